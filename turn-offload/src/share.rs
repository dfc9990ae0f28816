//! A table of installed bindings: handles on the program's three maps and a range of
//! counter slots. [`crate::FastPath`] holds one; [`crate::FastPath::split`] makes one
//! per shard, so threads install, remove and read their own bindings with no lock and
//! without waiting on each other (the kernel serialises map updates itself).

use std::collections::HashMap;
use std::os::fd::AsFd;

use aya::Ebpf;
use aya::maps::{self, Map, MapData, MapError, PerCpuArray, PerCpuValues};
use thiserror::Error;

use crate::binding::{Binding, BindingError, Counters};
use crate::layout::{self, ClientKey, ClientValue, PeerKey, PeerValue, TrafficValue};
use crate::program;
use crate::slots::Slots;

/// Why a binding was not installed; it stays on the userspace path.
#[derive(Debug, Error)]
pub enum InstallError {
    /// The binding is not one the program can relay.
    #[error(transparent)]
    Binding(#[from] BindingError),
    /// All the share's slots are in use.
    #[error("the fast path already holds its maximum of {0} bindings")]
    Full(u32),
    /// Another installed binding has the same client 5-tuple and channel, or the same
    /// peer on the same relay address.
    #[error("the binding conflicts with the installed binding {0:?}")]
    Conflict(Box<Binding>),
    /// The kernel refused a map update.
    #[error("updating the fast path's maps failed: {0}")]
    Map(#[from] MapError),
    /// The per-CPU counters could not be laid out (the CPU count was unreadable).
    #[error("zeroing the binding's counters failed: {0}")]
    Counters(#[from] std::io::Error),
}

/// An installed binding: its counter slot and what was already handed out.
#[derive(Debug)]
struct Installed {
    slot: u32,
    taken: Counters,
}

/// Bindings installed through this handle, and the counter slots it may hand out.
/// Bindings of different shares must not conflict (the driver guarantees it: a client
/// 5-tuple and a relay address belong to one shard).
pub struct Share {
    from_clients: maps::HashMap<MapData, ClientKey, ClientValue>,
    from_peers: maps::HashMap<MapData, PeerKey, PeerValue>,
    traffic: PerCpuArray<MapData, TrafficValue>,
    cpus: usize,
    installed: HashMap<Binding, Installed>,
    by_client_key: HashMap<ClientKey, Binding>,
    by_peer_key: HashMap<PeerKey, Binding>,
    slots: Slots,
}

impl Share {
    /// Handles of their own on `ebpf`'s maps (duplicated file descriptors), with the
    /// counter slots `first..end`.
    pub(crate) fn new(ebpf: &Ebpf, cpus: usize, first: u32, end: u32) -> Result<Self, MapError> {
        Ok(Self {
            from_clients: dup(ebpf, program::FROM_CLIENTS)?.try_into()?,
            from_peers: dup(ebpf, program::FROM_PEERS)?.try_into()?,
            traffic: dup(ebpf, program::TRAFFIC)?.try_into()?,
            cpus,
            installed: HashMap::new(),
            by_client_key: HashMap::new(),
            by_peer_key: HashMap::new(),
            slots: Slots::new(first, end),
        })
    }

    /// Relays `binding`'s ChannelData and peer datagrams in the kernel from now on.
    /// Installing an installed binding again changes nothing (its counters go on).
    pub fn install(&mut self, binding: Binding) -> Result<(), InstallError> {
        binding.validate()?;
        if self.installed.contains_key(&binding) {
            return Ok(());
        }
        let client_key = layout::client_key(&binding);
        let peer_key = layout::peer_key(&binding);
        if let Some(other) = self
            .by_client_key
            .get(&client_key)
            .or_else(|| self.by_peer_key.get(&peer_key))
        {
            return Err(InstallError::Conflict(Box::new(*other)));
        }
        let slot = self
            .slots
            .take()
            .ok_or(InstallError::Full(self.slots.capacity()))?;
        if let Err(e) = self.write_entries(&binding, slot, &client_key, &peer_key) {
            let _ = self.from_clients.remove(&client_key);
            let _ = self.from_peers.remove(&peer_key);
            self.slots.give_back(slot);
            return Err(e);
        }
        self.installed.insert(
            binding,
            Installed {
                slot,
                taken: Counters::default(),
            },
        );
        self.by_client_key.insert(client_key, binding);
        self.by_peer_key.insert(peer_key, binding);
        Ok(())
    }

    fn write_entries(
        &mut self,
        binding: &Binding,
        slot: u32,
        client_key: &ClientKey,
        peer_key: &PeerKey,
    ) -> Result<(), InstallError> {
        let zero = PerCpuValues::try_from(vec![[0u64; 4]; self.cpus])?;
        self.traffic.set(slot, zero, 0)?;
        self.from_clients
            .insert(client_key, layout::client_value(binding, slot), 0)?;
        self.from_peers
            .insert(peer_key, layout::peer_value(binding, slot), 0)?;
        Ok(())
    }

    /// Stops relaying `binding` in the kernel (its packets go to userspace again) and
    /// returns what was relayed since the last [`take`](Self::take) or
    /// [`take_counters`](Self::take_counters). `None` when it was not installed.
    pub fn remove(&mut self, binding: &Binding) -> Result<Option<Counters>, MapError> {
        let Some(installed) = self.installed.remove(binding) else {
            return Ok(None);
        };
        let client_key = layout::client_key(binding);
        let peer_key = layout::peer_key(binding);
        self.by_client_key.remove(&client_key);
        self.by_peer_key.remove(&peer_key);
        // Entries first, then the counters: no packet is counted after the read.
        let removed = self
            .from_clients
            .remove(&client_key)
            .and(self.from_peers.remove(&peer_key));
        let last = self
            .read(installed.slot)
            .map(|total| total - installed.taken);
        self.slots.give_back(installed.slot);
        removed?;
        last.map(Some)
    }

    /// Removes every binding (their map entries); what they relayed since the last take
    /// is dropped.
    pub fn clear(&mut self) {
        let all: Vec<Binding> = self.installed.keys().copied().collect();
        for binding in all {
            let _ = self.remove(&binding);
        }
    }

    /// Everything relayed for `binding` since it was installed.
    pub fn counters(&self, binding: &Binding) -> Result<Option<Counters>, MapError> {
        self.installed
            .get(binding)
            .map(|i| self.read(i.slot))
            .transpose()
    }

    /// What was relayed for `binding` since the last take (None when it is not
    /// installed): the driver folds this into its counters before an event that may
    /// end the binding's allocation, so the allocation's totals are complete.
    pub fn take(&mut self, binding: &Binding) -> Result<Option<Counters>, MapError> {
        let Some(installed) = self.installed.get_mut(binding) else {
            return Ok(None);
        };
        let total = read(&self.traffic, installed.slot)?;
        let delta = total - installed.taken;
        installed.taken = total;
        Ok(Some(delta))
    }

    /// What was relayed since the last call, for every binding that relayed anything:
    /// the driver adds these to its allocation counters, quotas and metrics.
    pub fn take_counters(&mut self) -> Result<Vec<(Binding, Counters)>, MapError> {
        let mut deltas = Vec::new();
        for (binding, installed) in &mut self.installed {
            let total = read(&self.traffic, installed.slot)?;
            let delta = total - installed.taken;
            if !delta.is_zero() {
                installed.taken = total;
                deltas.push((*binding, delta));
            }
        }
        Ok(deltas)
    }

    /// The number of installed bindings.
    pub fn len(&self) -> usize {
        self.installed.len()
    }

    /// True when no binding is installed.
    pub fn is_empty(&self) -> bool {
        self.installed.is_empty()
    }

    /// How many bindings this share can hold.
    pub fn capacity(&self) -> u32 {
        self.slots.capacity()
    }

    fn read(&self, slot: u32) -> Result<Counters, MapError> {
        read(&self.traffic, slot)
    }
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("bindings", &self.installed.len())
            .field("capacity", &self.slots.capacity())
            .finish_non_exhaustive()
    }
}

fn read(traffic: &PerCpuArray<MapData, TrafficValue>, slot: u32) -> Result<Counters, MapError> {
    Ok(layout::counters(traffic.get(&slot, 0)?.iter()))
}

/// A handle of its own on the map `name` of `ebpf`: a duplicated file descriptor.
fn dup(ebpf: &Ebpf, name: &str) -> Result<Map, MapError> {
    let Some(Map::HashMap(data) | Map::PerCpuArray(data)) = ebpf.map(name) else {
        return Err(MapError::InvalidName {
            name: name.to_owned(),
        });
    };
    let fd = data.fd().as_fd().try_clone_to_owned()?;
    Map::from_map_data(MapData::from_fd(fd)?)
}
