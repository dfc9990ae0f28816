//! Traffic a driver relayed alone on channel routes ([`crate::Event::ChannelBound`]),
//! counted as if the core had relayed it, so an allocation's totals, its end log, the
//! per-user figures and the stats stay true with a kernel fast path.

use super::{Server, slot_mut};
use crate::allocation::Traffic;
use crate::event::Relayed;
use crate::names::AllocId;

impl Server {
    /// Adds what the driver relayed alone for allocation `id` since its last report,
    /// client to peer and peer to client. An allocation that has ended meanwhile counts
    /// in the stats only. Report before an input that may end the allocation (a client's
    /// request, [`Self::handle_timeout`], [`Self::close_all`]) so its end log has it.
    pub fn record_offloaded(&mut self, id: AllocId, to_peer: Relayed, to_client: Relayed) {
        add(&mut self.stats.upstream, to_peer);
        add(&mut self.stats.downstream, to_client);
        if let Some(allocation) = slot_mut(&mut self.slots, id) {
            add(&mut allocation.upstream, to_peer);
            add(&mut allocation.downstream, to_client);
        }
    }
}

fn add(traffic: &mut Traffic, relayed: Relayed) {
    traffic.packets += relayed.packets;
    traffic.bytes += relayed.bytes;
}
