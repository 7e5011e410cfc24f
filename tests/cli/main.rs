//! Integration tests: the real `vane` binary, driven through a small builder, one file per feature.

mod support;

mod action;
mod actions;
mod alertmanager;
mod completions;
mod concurrency;
mod config;
mod daemon;
mod dispatch;
mod docs;
mod events;
mod examples;
mod git_http;
mod gitops;
mod hardening;
mod init;
mod jobs;
mod logs;
mod mqtt;
mod nats;
mod output;
mod poll;
mod progress;
mod registry;
mod reload;
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
