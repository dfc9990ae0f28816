//! Request extractors, so handlers receive what they need already checked: the body
//! decoded with Go's rules ([`go_json_body`]) or leniently ([`json_body`]), the
//! client's address behind trusted proxies ([`client_addr`]) and the homeserver's
//! application-service credentials ([`homeserver`]).

pub mod client_addr;
pub mod go_json_body;
pub mod homeserver;
pub mod json_body;
