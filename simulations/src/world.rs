//! The discrete-event engine: a binary heap of scheduled events ordered by (virtual time,
//! sequence number), so two events at the same instant run in the order they were scheduled.
//!
//! Events live in a slab of reusable slots and the heap holds only small `(at, seq, slot)`
//! keys, so sifting moves 24 bytes and a steady-state run allocates nothing per event. This
//! module knows nothing about nodes or networks; it only stores and orders [`Event`]s.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use bytes::Bytes;
pub use eccluster_proto::node::Channel;
use eccluster_proto::node::Timer;

use crate::time::SimTime;

/// Something that happens at a point in virtual time.
#[derive(Debug)]
pub enum Event {
    /// A message arrives at node `to`, sent by node `from`.
    Deliver {
        /// Sender index.
        from: u32,
        /// Receiver index.
        to: u32,
        /// How it travelled.
        channel: Channel,
        /// The exact bytes the sender's core produced.
        payload: Bytes,
    },
    /// A timer of node `node`'s core fires, unless the node restarted since (`run` differs).
    Timer {
        /// Node index.
        node: u32,
        /// The run of the node that set the timer.
        run: u32,
        /// The timer to hand back.
        timer: Timer,
    },
    /// The journal fsync under way at node `node` completes, unless the node restarted since.
    Synced {
        /// Node index.
        node: u32,
        /// The run of the node that began the fsync.
        run: u32,
    },
    /// Node `node`'s shell has pulled these configuration revisions, unless it restarted since.
    Fetched {
        /// Node index.
        node: u32,
        /// The run of the node that asked.
        run: u32,
        /// What it pulled.
        revisions: eccluster_proto::revisions::Revisions,
    },
    /// Step `index` of the scenario plan runs.
    Step(u32),
    /// Node `node` starts (a restart scheduled by churn or a rolling restart).
    Start(u32),
    /// Node `node` stops (a crash, or a leave when `graceful`), scheduled by a rolling restart.
    Stop {
        /// Node index.
        node: u32,
        /// Leave gracefully rather than crash.
        graceful: bool,
    },
    /// The next random crash of churn `index`.
    ChurnTick(u32),
    /// The next submission of repeated broadcast `index`.
    RepeatTick(u32),
    /// Sample the members-up series for the plots.
    Sample,
    /// An invariant deadline: re-check bounded-duration invariants now.
    Check,
    /// Re-check waiting assertions (views changed while re-checks were throttled).
    PollAssertions,
    /// Assertion `index` reaches the end of its `within` window.
    AssertionDeadline(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    at: SimTime,
    seq: u64,
    slot: u32,
}

/// The event heap with the current virtual time.
#[derive(Debug, Default)]
pub struct World {
    heap: BinaryHeap<Reverse<Key>>,
    slots: Vec<Option<Event>>,
    free: Vec<u32>,
    seq: u64,
    now: SimTime,
}

impl World {
    /// An empty world at time zero.
    pub fn new() -> World {
        World::default()
    }

    /// The current virtual time: the time of the event being handled.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Events scheduled so far (events are numbered 1, 2, ... in scheduling order).
    pub fn scheduled_count(&self) -> u64 {
        self.seq
    }

    /// Number of events waiting.
    pub fn pending(&self) -> usize {
        self.heap.len()
    }

    /// Schedules `event` at `at` (never before now: earlier times are moved to now).
    pub fn schedule(&mut self, at: SimTime, event: Event) {
        let at = at.max(self.now);
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.heap.push(Reverse(Key { at, seq: self.seq, slot }));
    }

    /// The time of the next event, if any.
    pub fn next_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|Reverse(k)| k.at)
    }

    /// Removes the earliest event if it is due no later than `until`, advancing the clock to it.
    /// Returns its sequence number and the event.
    pub fn pop_until(&mut self, until: SimTime) -> Option<(u64, Event)> {
        let Reverse(key) = *self.heap.peek()?;
        if key.at > until {
            return None;
        }
        self.heap.pop();
        self.now = key.at;
        let event = self
            .slots
            .get_mut(key.slot as usize)
            .and_then(Option::take)
            .expect("every scheduled key has its event in the slab");
        self.free.push(key.slot);
        Some((key.seq, event))
    }

    /// Moves the clock forward to `t` (used at the end of a run); never backwards.
    pub fn advance_to(&mut self, t: SimTime) {
        self.now = self.now.max(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(ms: u64) -> SimTime {
        SimTime::from_duration(Duration::from_millis(ms))
    }

    #[test]
    fn events_pop_by_time_then_by_scheduling_order() {
        let mut w = World::new();
        w.schedule(at(20), Event::Step(1));
        w.schedule(at(10), Event::Step(2));
        w.schedule(at(20), Event::Step(3));
        w.schedule(at(10), Event::Step(4));
        let mut order = Vec::new();
        while let Some((_, Event::Step(i))) = w.pop_until(SimTime::NEVER) {
            order.push((w.now(), i));
        }
        assert_eq!(order, vec![(at(10), 2), (at(10), 4), (at(20), 1), (at(20), 3)]);
    }

    #[test]
    fn slots_are_reused_and_the_past_is_clamped_to_now() {
        let mut w = World::new();
        w.schedule(at(5), Event::Sample);
        assert!(w.pop_until(at(4)).is_none(), "not due yet");
        assert!(matches!(w.pop_until(at(5)), Some((1, Event::Sample))));
        w.schedule(at(1), Event::Check);
        assert_eq!(w.next_time(), Some(at(5)), "scheduled in the past runs now");
        assert_eq!(w.slots.len(), 1, "slot reused");
        assert_eq!(w.pending(), 1);
    }
}
