//! berth: a docker-compatible client of berthd.
pub fn main() -> i32 {
    eprintln!("berth: not built yet");
    125
}
