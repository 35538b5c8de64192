//! xcbench agent: everything that runs on an Azure VM or an OCI instance.
//!
//! # Layout
//! - [`wire`]: STAMP packet formats, pure encode/decode.
//! - [`probe`]: sans-IO session-sender and session-reflector state machines.

pub mod probe;
pub mod wire;
