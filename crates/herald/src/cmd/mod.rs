pub mod client;
pub mod queues;
pub mod rpc;
pub mod serve;
pub mod token;
