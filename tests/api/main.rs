//! Integration tests: the real service on 127.0.0.1:0, driven through the generated tonic
//! clients, one module per capability. Scoring, the gate and end-to-end paths run on the real
//! model; validation and CRUD on the hashing embedder (helpers::Model). The store is the one
//! the settings name, behind a switch the store-down tests turn off (unplug.rs).

mod child;
mod clients;
mod helpers;
mod unplug;

mod compliance;
mod content;
mod crash;
mod fuzz;
mod gate;
mod health;
mod layers;
mod operations;
mod outage;
mod packaging;
mod persistence;
mod prospects;
mod replicas;
mod scoring;
mod security;
mod store_contract;
mod validation;
