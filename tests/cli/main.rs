//! Integration tests: the real `vane` binary, driven through a small builder, one file per feature.

mod support;

mod events;
mod examples;
mod output;
mod safety;
mod state;
mod steps;
mod validate;
