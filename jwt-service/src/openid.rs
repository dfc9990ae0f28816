//! Matrix OpenID verification over federation: server names, discovery, the network
//! clients, and the userinfo check.

pub mod discovery;
pub mod net;
pub mod server_name;
pub mod userinfo;
