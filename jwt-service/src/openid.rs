//! Matrix OpenID verification over federation: server names, discovery, the network
//! clients, the userinfo check and the cache of its answers.

pub mod discovery;
pub mod net;
pub mod server_name;
pub mod token_cache;
pub mod userinfo;
