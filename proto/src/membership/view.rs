//! The member table as operators see it: every member we know of, its state and since when.

use std::time::Instant;

use serde::Serialize;

use crate::ids::MemberId;

/// A member's state as shown by `show cluster membership`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Answering probes.
    Up,
    /// Someone suspects it; it has not refuted yet.
    Suspect,
    /// Declared down (crashed, unreachable, or left).
    Down,
}

impl MemberState {
    /// The lowercase name: `up`, `suspect` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Up => "up",
            MemberState::Suspect => "suspect",
            MemberState::Down => "down",
        }
    }
}

/// One row of the member table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The member's identity (latest incarnation known).
    pub id: MemberId,
    /// Its state.
    pub state: MemberState,
    /// When this member last changed state in our view, if we saw it change.
    pub since: Option<Instant>,
    /// True for the row describing ourselves.
    pub local: bool,
}
