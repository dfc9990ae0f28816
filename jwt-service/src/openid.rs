//! Matrix OpenID verification over federation: server names, discovery, the network
//! clients and the addresses they may reach, the userinfo check and the cache of its
//! answers.

pub mod discovery;
pub mod net;
pub mod reach;
pub mod server_name;
pub mod token_cache;
pub mod userinfo;
