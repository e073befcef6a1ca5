//! Integration tests: the real service (real model, embedded store) on 127.0.0.1:0, driven
//! through the generated tonic clients, one module per capability.

mod helpers;

mod compliance;
mod content;
mod gate;
mod health;
mod packaging;
mod persistence;
mod prospects;
mod scoring;
mod security;
mod store_contract;
mod validation;
