//! Container records and lifecycle.
use crate::*;
use serde_json::Value;

pub(crate) struct Inner {}
pub(crate) struct WaitInner {}
impl WaitInner {
    pub(crate) fn wait(self) -> WaitResult { todo!() }
}
pub(crate) fn open(_c: EngineConfig) -> Result<Arc<Engine>> { todo!() }
pub(crate) fn create(_e: &Engine, _n: Option<&str>, _b: &Value) -> Result<Value> { todo!() }
pub(crate) fn start(_e: &Engine, _id: &str) -> Result<()> { todo!() }
pub(crate) fn stop(_e: &Engine, _id: &str, _t: Option<i64>, _s: Option<&str>, _r: bool) -> Result<()> { todo!() }
pub(crate) fn restart(_e: &Engine, _id: &str, _t: Option<i64>, _s: Option<&str>) -> Result<()> { todo!() }
pub(crate) fn kill(_e: &Engine, _id: &str, _s: Option<&str>) -> Result<()> { todo!() }
pub(crate) fn pause(_e: &Engine, _id: &str) -> Result<()> { todo!() }
pub(crate) fn unpause(_e: &Engine, _id: &str) -> Result<()> { todo!() }
pub(crate) fn rename(_e: &Engine, _id: &str, _n: &str) -> Result<()> { todo!() }
pub(crate) fn update(_e: &Engine, _id: &str, _b: &Value) -> Result<Value> { todo!() }
pub(crate) fn remove(_e: &Engine, _id: &str, _f: bool, _v: bool) -> Result<()> { todo!() }
pub(crate) fn wait(_e: &Engine, _id: &str, _c: WaitCondition) -> Result<WaitHandle> { todo!() }
pub(crate) fn prune(_e: &Engine, _f: &Value) -> Result<Value> { todo!() }
pub(crate) fn list(_e: &Engine, _o: &ListOptions) -> Result<Vec<Value>> { todo!() }
pub(crate) fn inspect(_e: &Engine, _id: &str, _s: bool) -> Result<Value> { todo!() }
pub(crate) fn top(_e: &Engine, _id: &str, _p: Option<&str>) -> Result<Value> { todo!() }
pub(crate) fn stats(_e: &Engine, _id: &str, _p: Option<&Value>, _o: bool) -> Result<Value> { todo!() }
