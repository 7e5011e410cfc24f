//! Integration tests: the real `vane` binary, driven through a small builder, one file per feature.

mod support;

mod actions;
mod completions;
mod concurrency;
mod config;
mod dispatch;
mod events;
mod examples;
mod gates;
mod git_http;
mod gitops;
mod init;
mod jobs;
mod mqtt;
mod nats;
mod output;
mod poll;
mod progress;
mod registry;
mod revision;
mod safety;
mod scale;
mod schema;
mod serve;
mod state;
mod steps;
mod testing;
mod validate;
mod watch;
