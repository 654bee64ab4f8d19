use crate::*;
use serde_json::Value;
pub(crate) fn list(_e: &Engine, _a: bool, _f: &Value) -> Result<Vec<Value>> { todo!() }
pub(crate) fn inspect(_e: &Engine, _n: &str) -> Result<Value> { todo!() }
pub(crate) fn history(_e: &Engine, _n: &str) -> Result<Value> { todo!() }
pub(crate) fn tag(_e: &Engine, _n: &str, _r: &str, _t: Option<&str>) -> Result<()> { todo!() }
pub(crate) fn remove(_e: &Engine, _n: &str, _f: bool, _p: bool) -> Result<Value> { todo!() }
pub(crate) fn prune(_e: &Engine, _f: &Value) -> Result<Value> { todo!() }
pub(crate) fn load(_e: &Engine, _r: &mut (dyn Read + Send), _q: bool, _p: Progress) -> Result<()> { todo!() }
pub(crate) fn save(_e: &Engine, _n: &[String], _w: &mut dyn Write) -> Result<()> { todo!() }
pub(crate) fn pull(_e: &Engine, _f: &str, _t: Option<&str>, _pl: Option<&str>, _a: Option<&RegistryAuth>, _p: Progress) -> Result<()> { todo!() }
#[allow(clippy::too_many_arguments)]
pub(crate) fn import(_e: &Engine, _r: &mut (dyn Read + Send), _repo: Option<&str>, _t: Option<&str>, _c: &[String], _m: Option<&str>, _pl: Option<&str>, _p: Progress) -> Result<()> { todo!() }
pub(crate) fn push(_e: &Engine, _n: &str, _t: Option<&str>, _a: Option<&RegistryAuth>, _p: Progress) -> Result<()> { todo!() }
