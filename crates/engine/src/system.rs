use crate::*;
use serde_json::Value;
pub(crate) fn info(_e: &Engine) -> Result<Value> { todo!() }
pub(crate) fn version() -> Value { todo!() }
pub(crate) fn df(_e: &Engine) -> Result<Value> { todo!() }
