//! A seeded start's member tables, filled on several threads.
//!
//! With `start = "seeded"` every node boots at 0 and fills its member table from the roster
//! (`Node::start_seeded`): foca inserts each member with a scan of its list, so this is N² / 2
//! scans per node and most of a large run's start. What a node's core does then depends only
//! on its own inputs — its configuration, the seed of its RNG, its clock reading and the
//! roster — never on another node, so the cores of the next few starts are built and seeded
//! ahead, side by side, and the run takes each one at its own `Start` event, where the core
//! would otherwise have been built. The outputs they queued are drained there, in the same
//! order as ever.
//!
//! The seeds of those cores come from a copy of the simulation's RNG, on the guess that the
//! next `Start` events follow one another with nothing else drawing from it in between (true
//! of a seeded start: a seeded core sends nothing when it starts). Each start checks the
//! guess — same seed, incarnation and clock reading — and builds its core itself when it does
//! not hold, so the run is the same whatever the number of threads, and with none.

use std::collections::BTreeMap;
use std::time::Instant;

use eccluster_proto::ids::{AddrKey, SwimId};
use eccluster_proto::node::Node;
use rand::rngs::{ChaCha12Rng, StdRng};
use rand::{Rng, SeedableRng};

use super::Simulation;
use crate::node::Setup;
use crate::topology::Topology;

/// Cores built ahead per thread at a time: each holds the burst of `MemberUp` events its start
/// published until its `Start` event drains them, so a batch is kept small.
const AHEAD_PER_THREAD: usize = 16;

/// One core to build ahead.
struct Job {
    node: usize,
    seed: u64,
    incarnation: u64,
    instant: Instant,
}

/// A core built and seeded ahead of its `Start` event, with what it was built from.
pub(super) struct Ahead {
    seed: u64,
    incarnation: u64,
    instant: Instant,
    core: Node,
}

/// The cores built ahead, by node, and whether guessing is still worth it.
#[derive(Default)]
pub(super) struct SeededAhead {
    cores: BTreeMap<usize, Ahead>,
    /// A guess failed: something draws from the RNG between starts, so build no more ahead.
    given_up: bool,
    /// Cores built ahead that a start took.
    pub(super) taken: u64,
}

/// The number of threads a seeded start uses when not told: the machine's cores.
pub fn default_seed_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Simulation {
    /// The seed of node `i`'s core, drawn from the RNG, and the core itself if one was built
    /// and seeded ahead from exactly this seed, `incarnation` and clock reading (`None`: build
    /// it with the seed). For a first seeded start with no journal to replay and no revisions
    /// to announce; a batch is built from the RNG's next draws when none is left.
    pub(super) fn seeded_core_ahead(&mut self, i: usize, incarnation: u64) -> (u64, Option<Node>) {
        if !self.ahead.given_up && self.ahead.cores.is_empty() {
            self.build_ahead(i);
        }
        let seed = self.rng.next_u64();
        let instant = self.node_instant(i);
        match self.ahead.cores.remove(&i) {
            Some(a) if a.seed == seed && a.incarnation == incarnation && a.instant == instant => {
                self.ahead.taken += 1;
                (seed, Some(a.core))
            }
            _ => {
                self.ahead.cores.clear();
                self.ahead.given_up = true;
                (seed, None)
            }
        }
    }

    /// Builds the cores of the next nodes that have not started, from node `first` on, as
    /// their starts would if nothing else drew from the RNG in between.
    fn build_ahead(&mut self, first: usize) {
        let threads = self.seed_threads.max(1);
        let mut guess = copy_of(&self.rng);
        let now = self.world.now();
        let jobs: Vec<Job> = (first..self.nodes.len())
            .filter(|&j| self.nodes[j].run == 0)
            .take(threads * AHEAD_PER_THREAD)
            .map(|node| Job {
                node,
                seed: guess.next_u64(),
                incarnation: self.nodes[node].next_incarnation(now),
                instant: self.node_instant(node),
            })
            .collect();
        let (setup, topo) = (&self.setup, &self.topo);
        let built: Vec<Option<(usize, Ahead)>> = if threads == 1 {
            jobs.iter().map(|job| build(setup, topo, job)).collect()
        } else {
            let per = jobs.len().div_ceil(threads).max(1);
            std::thread::scope(|scope| {
                let handles: Vec<_> = jobs
                    .chunks(per)
                    .map(|chunk| scope.spawn(move || chunk.iter().map(|job| build(setup, topo, job)).collect::<Vec<_>>()))
                    .collect();
                // A thread that panicked lost its cores; their starts build them themselves.
                handles.into_iter().filter_map(|h| h.join().ok()).flatten().collect()
            })
        };
        self.ahead.cores.extend(built.into_iter().flatten());
    }
}

/// A generator that yields what `rng` will yield from here on, leaving `rng` as it is.
fn copy_of(rng: &ChaCha12Rng) -> ChaCha12Rng {
    let mut copy = ChaCha12Rng::from_seed(rng.get_seed());
    copy.set_stream(rng.get_stream());
    copy.set_word_pos(rng.get_word_pos());
    copy
}

/// Builds and seeds one core as `start_node` does for a first seeded start (no journal to
/// replay, no revisions to announce). `None` if the core cannot be built (the start reports it).
fn build(setup: &Setup, topo: &Topology, job: &Job) -> Option<(usize, Ahead)> {
    let host = topo.host(job.node);
    let mut core = Node::new(setup.node_config(host, job.incarnation), StdRng::seed_from_u64(job.seed)).ok()?;
    core.start_seeded(job.instant, seed_members(topo));
    Some((job.node, Ahead { seed: job.seed, incarnation: job.incarnation, instant: job.instant, core }))
}

/// Every host of the topology, as the identity a seeded member table starts with.
pub(super) fn seed_members(topo: &Topology) -> impl Iterator<Item = SwimId> + '_ {
    topo.hosts().iter().map(|h| SwimId { key: AddrKey::of(h.addr), incarnation: 1 })
}

#[cfg(test)]
mod tests {
    use rand::{Rng, RngExt, SeedableRng};

    use super::*;

    #[test]
    fn a_copy_yields_what_the_generator_will() {
        let mut rng = ChaCha12Rng::seed_from_u64(7);
        // Odd draws leave the generator inside a block, on an odd word and at block ends.
        for round in 0..200u64 {
            for _ in 0..round % 5 {
                rng.next_u32();
            }
            let mut copy = copy_of(&rng);
            assert_eq!(copy.next_u64(), rng.next_u64(), "round {round}");
            assert_eq!(copy.random_range(0..1_000_000u64), rng.random_range(0..1_000_000u64), "round {round}");
            assert_eq!(copy.next_u32(), rng.next_u32(), "round {round}");
        }
    }

    #[test]
    fn the_simulation_generator_is_std_rng() {
        let mut ours = ChaCha12Rng::seed_from_u64(42);
        let mut std = StdRng::seed_from_u64(42);
        for _ in 0..100 {
            assert_eq!(ours.next_u64(), std.next_u64());
        }
    }
}
