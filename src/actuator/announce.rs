//! Link-layer announcements of a freshly acquired address: gratuitous ARP for IPv4 and
//! unsolicited neighbour advertisements for IPv6, sent as raw Ethernet frames on the
//! interface that holds the address, so that neighbours and switches move their caches to us.
//!
//! The frame builders are pure (no I/O) and tested byte for byte; [`send`] is the only
//! function here that touches the machine, and it blocks briefly: call it off the async
//! threads. When and how often to announce is the worker's business, not this file's.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use pnet_datalink::{Channel, MacAddr, NetworkInterface};
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{MutableNeighborAdvertPacket, NdpOption, NdpOptionTypes, NeighborAdvertFlags};
use pnet_packet::icmpv6::{self, Icmpv6Code, Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::MutableIpv6Packet;

use super::netlink::Link;

/// Smallest Ethernet frame without its FCS; shorter frames are padded with zeros (the ARP
/// frame is 42 bytes of content).
const ETHERNET_MIN_FRAME: usize = 60;
const ETHERNET_HEADER: usize = 14;
const ARP_BODY: usize = 28;
const IPV6_HEADER: usize = 40;
/// Neighbour advertisement without options: type, code, checksum, flags + reserved, target.
const NA_BODY: usize = 24;
/// The target link-layer address option for Ethernet: type, length (in 8-byte units), MAC.
const NA_TARGET_LLADDR_OPTION: usize = 8;
/// All-nodes multicast address, where unsolicited advertisements go (RFC 4861 § 7.2.6).
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Hop limit every neighbour discovery message carries; receivers drop anything else.
const NDP_HOP_LIMIT: u8 = 255;
/// How long one frame may wait for room in the socket's queue.
const WRITE_TIMEOUT: Duration = Duration::from_millis(100);

/// The announcement of `addr` from `mac`: a gratuitous ARP request for IPv4, an unsolicited
/// neighbour advertisement for IPv6.
pub(super) fn frame(mac: MacAddr, addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(addr) => gratuitous_arp(mac, addr),
        IpAddr::V6(addr) => unsolicited_neighbour_advertisement(mac, addr),
    }
}

/// A gratuitous ARP request as keepalived sends it: broadcast, sender = target = `addr`,
/// sender hardware address `mac`, target hardware address zero (RFC 5227 § 2.3), padded to
/// the minimum Ethernet frame.
pub(super) fn gratuitous_arp(mac: MacAddr, addr: Ipv4Addr) -> Vec<u8> {
    let mut frame = vec![0u8; ETHERNET_MIN_FRAME];
    {
        let mut ethernet = MutableEthernetPacket::new(&mut frame[..ETHERNET_HEADER + ARP_BODY])
            .expect("buffer sized for an ethernet header and an arp body");
        ethernet.set_destination(MacAddr::broadcast());
        ethernet.set_source(mac);
        ethernet.set_ethertype(EtherTypes::Arp);
    }
    let mut arp = MutableArpPacket::new(&mut frame[ETHERNET_HEADER..ETHERNET_HEADER + ARP_BODY])
        .expect("buffer sized for an arp body");
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(ArpOperations::Request);
    arp.set_sender_hw_addr(mac);
    arp.set_sender_proto_addr(addr);
    arp.set_target_hw_addr(MacAddr::zero());
    arp.set_target_proto_addr(addr);
    frame
}

/// An unsolicited neighbour advertisement (RFC 4861 § 7.2.6) as keepalived sends it: from
/// `addr` to all nodes (ff02::1, Ethernet 33:33:00:00:00:01), hop limit 255, override flag set,
/// solicited flag clear, target `addr` with its link-layer address `mac` in an option.
pub(super) fn unsolicited_neighbour_advertisement(mac: MacAddr, addr: Ipv6Addr) -> Vec<u8> {
    let icmp_len = NA_BODY + NA_TARGET_LLADDR_OPTION;
    let mut frame = vec![0u8; ETHERNET_HEADER + IPV6_HEADER + icmp_len];
    {
        let mut ethernet =
            MutableEthernetPacket::new(&mut frame[..]).expect("buffer sized for an ethernet header");
        ethernet.set_destination(multicast_mac(ALL_NODES));
        ethernet.set_source(mac);
        ethernet.set_ethertype(EtherTypes::Ipv6);
    }
    {
        let mut ip =
            MutableIpv6Packet::new(&mut frame[ETHERNET_HEADER..]).expect("buffer sized for an ipv6 header");
        ip.set_version(6);
        ip.set_payload_length(icmp_len as u16);
        ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
        ip.set_hop_limit(NDP_HOP_LIMIT);
        ip.set_source(addr);
        ip.set_destination(ALL_NODES);
    }
    let icmp = &mut frame[ETHERNET_HEADER + IPV6_HEADER..];
    {
        let mut advert =
            MutableNeighborAdvertPacket::new(icmp).expect("buffer sized for a neighbour advertisement");
        advert.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
        advert.set_icmpv6_code(Icmpv6Code(0));
        advert.set_flags(NeighborAdvertFlags::Override);
        advert.set_target_addr(addr);
        advert.set_options(&[NdpOption {
            option_type: NdpOptionTypes::TargetLLAddr,
            length: (NA_TARGET_LLADDR_OPTION / 8) as u8,
            data: mac.octets().to_vec(),
        }]);
    }
    let checksum = icmpv6::checksum(
        &Icmpv6Packet::new(icmp).expect("buffer sized for an icmpv6 message"),
        &addr,
        &ALL_NODES,
    );
    MutableNeighborAdvertPacket::new(icmp)
        .expect("buffer sized for a neighbour advertisement")
        .set_checksum(checksum);
    frame
}

/// The Ethernet multicast address of an IPv6 multicast group: 33:33 and its last 32 bits.
fn multicast_mac(group: Ipv6Addr) -> MacAddr {
    let o = group.octets();
    MacAddr::new(0x33, 0x33, o[12], o[13], o[14], o[15])
}

/// Sends each of `frames` `repeat` times on `link`, back to back. Blocks for at most
/// [`WRITE_TIMEOUT`] per frame; the raw socket lives in the network namespace of the
/// calling thread.
pub(super) fn send(link: &Link, mac: MacAddr, frames: &[Vec<u8>], repeat: u32) -> io::Result<()> {
    let interface = NetworkInterface {
        name: link.name.clone(),
        description: String::new(),
        index: link.index,
        mac: Some(mac),
        ips: Vec::new(),
        flags: 0,
    };
    let config = pnet_datalink::Config {
        write_timeout: Some(WRITE_TIMEOUT),
        read_buffer_size: ETHERNET_MIN_FRAME,
        promiscuous: false,
        ..pnet_datalink::Config::default()
    };
    let mut tx = match pnet_datalink::channel(&interface, config)? {
        Channel::Ethernet(tx, _rx) => tx,
        _ => return Err(io::Error::other("the datalink channel is not an ethernet channel")),
    };
    for _ in 0..repeat {
        for frame in frames {
            match tx.send_to(frame, None) {
                Some(result) => result?,
                None => return Err(io::Error::other("frame larger than the send buffer")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr(0x02, 0x11, 0x22, 0x33, 0x44, 0x55);

    /// The one's complement sum of the IPv6 pseudo-header and the ICMPv6 message, computed
    /// here independently of pnet: 0xffff when the checksum in the message is right.
    fn icmpv6_sum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&src.octets());
        bytes.extend_from_slice(&dst.octets());
        bytes.extend_from_slice(&(message.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 58]);
        bytes.extend_from_slice(message);
        if bytes.len() % 2 == 1 {
            bytes.push(0);
        }
        let mut sum: u32 = bytes.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn gratuitous_arp_is_a_broadcast_request_for_itself() {
        let frame = gratuitous_arp(MAC, Ipv4Addr::new(10, 77, 1, 100));
        #[rustfmt::skip]
        let expected: [u8; 42] = [
            // ethernet: broadcast destination, our source, ARP
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55,
            0x08, 0x06,
            // ARP: Ethernet, IPv4, 6, 4, request
            0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
            // sender MAC and IP
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 10, 77, 1, 100,
            // target MAC (zero) and IP (the same address)
            0, 0, 0, 0, 0, 0, 10, 77, 1, 100,
        ];
        assert_eq!(frame.len(), 60, "padded to the minimum ethernet frame");
        assert_eq!(&frame[..42], &expected[..]);
        assert!(frame[42..].iter().all(|b| *b == 0), "padding is zero");
    }

    #[test]
    fn neighbour_advertisement_is_unsolicited_with_override_and_lladdr() {
        let vip: Ipv6Addr = "fd77:1::100".parse().expect("address");
        let frame = unsolicited_neighbour_advertisement(MAC, vip);
        assert_eq!(frame.len(), 14 + 40 + 32);
        #[rustfmt::skip]
        let ethernet: [u8; 14] = [
            0x33, 0x33, 0x00, 0x00, 0x00, 0x01,
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55,
            0x86, 0xdd,
        ];
        assert_eq!(&frame[..14], &ethernet[..]);
        #[rustfmt::skip]
        let ipv6: [u8; 40] = [
            0x60, 0, 0, 0,          // version 6, traffic class 0, flow label 0
            0, 32, 58, 255,         // payload 32 bytes, next header ICMPv6, hop limit 255
            0xfd, 0x77, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00,
            0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        ];
        assert_eq!(&frame[14..54], &ipv6[..]);
        let icmp = &frame[54..];
        assert_eq!(icmp[0], 136, "type: neighbour advertisement");
        assert_eq!(icmp[1], 0, "code");
        assert_eq!(&icmp[4..8], &[0x20, 0, 0, 0], "override only: not router, not solicited");
        assert_eq!(&icmp[8..24], &vip.octets(), "target address");
        assert_eq!(&icmp[24..32], &[2, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55], "target lladdr option");
        assert_eq!(icmpv6_sum(vip, ALL_NODES, icmp), 0xffff, "checksum verifies");
    }

    #[test]
    fn neighbour_advertisement_checksum_matches_reference_value() {
        // Reference value computed outside this code (one's complement of the 16-bit sum of
        // the pseudo-header and the message with a zero checksum field).
        let vip: Ipv6Addr = "fd77:1::100".parse().expect("address");
        let frame = unsolicited_neighbour_advertisement(MAC, vip);
        assert_eq!(&frame[56..58], &[0xf1, 0x14]);
        let mut corrupted = frame.clone();
        corrupted[60] ^= 0x01;
        assert_ne!(icmpv6_sum(vip, ALL_NODES, &corrupted[54..]), 0xffff, "the sum detects a flipped bit");
    }

    #[test]
    fn frame_picks_the_announcement_by_family() {
        assert_eq!(frame(MAC, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))[12..14], [0x08, 0x06]);
        assert_eq!(frame(MAC, "2001:db8::1".parse().expect("address"))[12..14], [0x86, 0xdd]);
    }

    #[test]
    fn multicast_mac_takes_the_last_four_bytes() {
        let group: Ipv6Addr = "ff02::1:ff00:1234".parse().expect("address");
        assert_eq!(multicast_mac(group), MacAddr::new(0x33, 0x33, 0xff, 0x00, 0x12, 0x34));
    }
}
