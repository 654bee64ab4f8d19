use crate::*;
use serde_json::Value;
pub(crate) fn changes(_e: &Engine, _id: &str) -> Result<Value> { todo!() }
pub(crate) fn export(_e: &Engine, _id: &str, _w: &mut dyn Write) -> Result<()> { todo!() }
pub(crate) fn stat(_e: &Engine, _id: &str, _p: &str) -> Result<Value> { todo!() }
pub(crate) fn get(_e: &Engine, _id: &str, _p: &str, _w: &mut dyn Write) -> Result<()> { todo!() }
pub(crate) fn put(_e: &Engine, _id: &str, _p: &str, _r: &mut dyn Read, _n: bool, _c: bool) -> Result<()> { todo!() }
