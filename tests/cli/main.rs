//! Integration tests: the real `vane` binary, driven through a small builder, one file per feature.

mod support;

mod actions;
mod completions;
mod concurrency;
mod dispatch;
mod events;
mod examples;
mod gitops;
mod init;
mod jobs;
mod mqtt;
mod nats;
mod output;
mod progress;
mod revision;
mod safety;
mod scale;
mod schema;
mod state;
mod steps;
mod testing;
mod validate;
