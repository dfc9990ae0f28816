//! Everything that talks LiveKit: tokens, room/identity derivation, the Twirp API.

pub mod alias;
pub mod protobuf;
pub mod token;
pub mod twirp;
