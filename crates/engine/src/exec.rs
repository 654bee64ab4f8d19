use crate::*;
use serde_json::Value;
pub(crate) fn create(_e: &Engine, _c: &str, _b: &Value) -> Result<Value> { todo!() }
pub(crate) fn start(_e: &Engine, _id: &str, _d: bool, _t: bool) -> Result<Option<Attach>> { todo!() }
pub(crate) fn inspect(_e: &Engine, _id: &str) -> Result<Value> { todo!() }
pub(crate) fn resize(_e: &Engine, _id: &str, _h: u16, _w: u16) -> Result<()> { todo!() }
