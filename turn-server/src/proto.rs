//! The sans-IO TURN core: fed datagrams, stream chunks and time; gives back what to send
//! where and when to call again. No sockets, no clock reads, no tokio.

pub mod codec;
