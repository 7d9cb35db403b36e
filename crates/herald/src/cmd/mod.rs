pub mod client;
pub mod queues;
pub mod serve;
