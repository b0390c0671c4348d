//! Block deltas without a server process: the publisher's block signatures, the
//! client's matching of its local bytes against them, and the plan of what to
//! read locally and what to fetch.

pub(crate) mod matching;
pub(crate) mod plan;
pub mod signature;
