//! The console line grammar (words, quotes, the `xml` / `json` prefix) is shared with the node
//! core, which parses the commands of operations with it: it lives in
//! [`eccluster_proto::node::line`] and is re-exported here for the console's users.

pub use eccluster_proto::node::line::*;
