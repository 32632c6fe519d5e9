//! The rtnetlink side of the netlink actuator: look up an interface by name, add an address
//! with a valid lifetime (replacing, hence renewing, an existing one), find and delete
//! addresses. One netlink socket, opened in the network namespace of the thread that starts
//! the actuator.
//!
//! Only address and link requests here; what to add when, and what to report, is the
//! worker's business.

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use futures_util::TryStreamExt;
use nix::errno::Errno;
use pnet_datalink::MacAddr;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, CacheInfo,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::proto::Connection;
use rtnetlink::Handle;

use super::ActuatorError;

/// An interface as the kernel knows it now.
#[derive(Debug, Clone)]
pub(super) struct Link {
    /// Its name.
    pub(super) name: String,
    /// Its index.
    pub(super) index: u32,
    /// Its Ethernet address (`None` for interfaces without one, such as loopback).
    pub(super) mac: Option<MacAddr>,
    /// Operationally up: frames sent now leave.
    pub(super) running: bool,
    /// Takes no ARP (loopback, point-to-point): nothing to announce on it.
    pub(super) noarp: bool,
}

/// A handle on the route netlink socket.
pub(super) struct Netlink {
    handle: Handle,
    /// Valid and preferred lifetime of added addresses, in seconds.
    lifetime_secs: u32,
}

impl Netlink {
    /// Opens the socket. The returned connection must be polled for requests to complete;
    /// it ends once every handle is dropped.
    pub(super) fn open(lifetime: Duration) -> io::Result<(Netlink, Connection<RouteNetlinkMessage>)> {
        let (connection, handle, _unsolicited) = rtnetlink::new_connection()?;
        Ok((Netlink { handle, lifetime_secs: lifetime_secs(lifetime) }, connection))
    }

    /// The interface named `name`; a missing one is [`ActuatorError::InterfaceMissing`].
    pub(super) async fn link(&self, name: &str) -> Result<Link, ActuatorError> {
        let mut links = self.handle.link().get().match_name(name).execute();
        let found = links.try_next().await.map_err(|error| {
            let source = to_io(error);
            if source.raw_os_error() == Some(Errno::ENODEV as i32) {
                ActuatorError::InterfaceMissing { interface: name.to_owned() }
            } else {
                ActuatorError::Link { interface: name.to_owned(), source }
            }
        })?;
        let message = found.ok_or_else(|| ActuatorError::InterfaceMissing { interface: name.to_owned() })?;
        let mac = message.attributes.iter().find_map(|attribute| match attribute {
            LinkAttribute::Address(bytes) if bytes.len() == 6 => {
                Some(MacAddr::new(bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]))
            }
            _ => None,
        });
        let flags = message.header.flags;
        Ok(Link {
            name: name.to_owned(),
            index: message.header.index,
            mac,
            running: flags.contains(LinkFlags::Running),
            noarp: flags.contains(LinkFlags::Noarp),
        })
    }

    /// Adds `addr/prefix_len` on `link` with the configured lifetime, replacing an address
    /// already there (which renews its lifetime). IPv6 addresses skip duplicate address
    /// detection so they are usable at once.
    pub(super) async fn add(&self, link: &Link, addr: IpAddr, prefix_len: u8) -> Result<(), ActuatorError> {
        let mut request = self.handle.address().add(link.index, addr, prefix_len).replace();
        let message = request.message_mut();
        let mut cache_info = CacheInfo::default();
        cache_info.ifa_valid = self.lifetime_secs;
        cache_info.ifa_preferred = self.lifetime_secs;
        message.attributes.push(AddressAttribute::CacheInfo(cache_info));
        if addr.is_ipv6() {
            message.header.flags = AddressHeaderFlags::Nodad;
            message.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        request.execute().await.map_err(|error| ActuatorError::Add {
            addr,
            prefix_len,
            interface: link.name.clone(),
            source: to_io(error),
        })
    }

    /// Every address configured on the machine whose local address is in `wanted`.
    pub(super) async fn find(&self, wanted: &BTreeSet<IpAddr>) -> Result<Vec<AddressMessage>, ActuatorError> {
        let mut dump = self.handle.address().get().execute();
        let mut found = Vec::new();
        while let Some(message) =
            dump.try_next().await.map_err(|error| ActuatorError::Dump { source: to_io(error) })?
        {
            if local_addr(&message).is_some_and(|addr| wanted.contains(&addr)) {
                found.push(message);
            }
        }
        Ok(found)
    }

    /// Deletes an address as [`Netlink::find`] returned it. One that is already gone is not
    /// an error.
    pub(super) async fn delete(&self, message: AddressMessage) -> Result<(), ActuatorError> {
        let index = message.header.index;
        let addr = local_addr(&message);
        match self.handle.address().del(message).execute().await.map_err(to_io) {
            Ok(()) => Ok(()),
            Err(error) if error.raw_os_error() == Some(Errno::EADDRNOTAVAIL as i32) => Ok(()),
            Err(source) => Err(ActuatorError::Delete { addr, index, source }),
        }
    }

    /// Deletes `addr` from whichever interfaces hold it; returns how many it was on.
    pub(super) async fn remove(&self, addr: IpAddr) -> Result<usize, ActuatorError> {
        let found = self.find(&BTreeSet::from([addr])).await?;
        let count = found.len();
        for message in found {
            self.delete(message).await?;
        }
        Ok(count)
    }
}

/// The address an address message is about: `IFA_LOCAL` (IPv4, and the local end of a
/// point-to-point link), else `IFA_ADDRESS` (IPv6).
pub(super) fn local_addr(message: &AddressMessage) -> Option<IpAddr> {
    let local = message.attributes.iter().find_map(|attribute| match attribute {
        AddressAttribute::Local(addr) => Some(*addr),
        _ => None,
    });
    local.or_else(|| {
        message.attributes.iter().find_map(|attribute| match attribute {
            AddressAttribute::Address(addr) => Some(*addr),
            _ => None,
        })
    })
}

/// A lifetime in whole seconds as the kernel takes it: rounded up, at least 1, and below
/// `u32::MAX` (which would mean forever).
pub(super) fn lifetime_secs(lifetime: Duration) -> u32 {
    let secs = lifetime.as_secs() + u64::from(lifetime.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX - 1).clamp(1, u32::MAX - 1)
}

/// rtnetlink's error as the operating-system error it carries, for a readable message.
fn to_io(error: rtnetlink::Error) -> io::Error {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.to_io(),
        other => io::Error::other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_rounds_up_to_whole_seconds_within_kernel_range() {
        assert_eq!(lifetime_secs(Duration::from_secs(3)), 3);
        assert_eq!(lifetime_secs(Duration::from_millis(2500)), 3);
        assert_eq!(lifetime_secs(Duration::ZERO), 1);
        assert_eq!(lifetime_secs(Duration::from_secs(u64::MAX)), u32::MAX - 1);
    }

    #[test]
    fn local_addr_prefers_ifa_local() {
        let mut message = AddressMessage::default();
        message.attributes.push(AddressAttribute::Address("10.0.0.2".parse().expect("address")));
        message.attributes.push(AddressAttribute::Local("10.0.0.1".parse().expect("address")));
        assert_eq!(local_addr(&message), Some("10.0.0.1".parse().expect("address")));
        let mut v6 = AddressMessage::default();
        v6.attributes.push(AddressAttribute::Address("fd00::1".parse().expect("address")));
        assert_eq!(local_addr(&v6), Some("fd00::1".parse().expect("address")));
    }
}
