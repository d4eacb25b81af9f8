//! The `taglock` command.
fn main() {}
