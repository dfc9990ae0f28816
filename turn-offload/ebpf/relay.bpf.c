// SPDX-License-Identifier: MIT OR GPL-2.0-only
/*
 * The TURN ChannelData fast path: a TC classifier on the server's interfaces.
 *
 * Client -> peer: ChannelData sent from a client's 5-tuple to the server's listening
 * address on a bound channel becomes a UDP datagram from the relay address to the peer.
 * Peer -> client: a datagram from a channel-bound peer to the relay address becomes
 * ChannelData from the listening address to the client.
 *
 * Everything the program does not recognise returns TC_ACT_OK untouched, so the
 * userspace server handles it exactly as without the program. The map layouts are
 * encoded by src/layout.rs; the design note is the crate documentation (src/lib.rs).
 *
 * Dual licensed (MIT for the project, GPL-2.0 for the kernel): bpf_fib_lookup is a
 * GPL-only helper, so the object declares "Dual MIT/GPL".
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define AF_INET 2
#define AF_INET6 10
#define IPV4_MORE_FRAGMENTS 0x2000
#define IPV4_FRAGMENT_OFFSET 0x1fff
#define LOOPBACK_IFINDEX 1
#define CHANNEL_HEADER 4
#define UDP_HEADER 8
/* Payload bytes are moved in chunks through a per-CPU scratch buffer. */
#define CHUNK 512
#define MAX_CHUNKS 8
#define MAX_DATA (CHUNK * MAX_CHUNKS)

/* Key of a client -> peer entry: the client's 5-tuple and the channel number. */
struct client_key {
	__u8 client_ip[16]; /* IPv4 as ::ffff:a.b.c.d */
	__u8 server_ip[16];
	__be16 client_port;
	__be16 server_port;
	__be16 channel;
	__u16 zero;
};

struct client_value {
	__u8 relay_ip[16];
	__u8 peer_ip[16];
	__u32 slot; /* index into `traffic` */
	__be16 relay_port;
	__be16 peer_port;
};

/* Key of a peer -> client entry: the peer's address and the relay address it sent to. */
struct peer_key {
	__u8 peer_ip[16];
	__u8 relay_ip[16];
	__be16 peer_port;
	__be16 relay_port;
};

struct peer_value {
	__u8 client_ip[16];
	__u8 server_ip[16];
	__u32 slot;
	__be16 client_port;
	__be16 server_port;
	__be16 channel;
	__u16 zero;
};

/* Per binding and CPU: what the program relayed. Bytes are application data bytes. */
struct traffic {
	__u64 to_peer_packets;
	__u64 to_peer_bytes;
	__u64 to_client_packets;
	__u64 to_client_bytes;
};

struct chunk {
	__u8 bytes[CHUNK];
};

/* The loader encodes these byte for byte (src/layout.rs). */
_Static_assert(sizeof(struct client_key) == 40, "client_key layout");
_Static_assert(sizeof(struct client_value) == 40, "client_value layout");
_Static_assert(sizeof(struct peer_key) == 36, "peer_key layout");
_Static_assert(sizeof(struct peer_value) == 44, "peer_value layout");
_Static_assert(sizeof(struct traffic) == 32, "traffic layout");

/* max_entries are set by the loader (Config::max_bindings). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct client_key);
	__type(value, struct client_value);
} from_clients SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct peer_key);
	__type(value, struct peer_value);
} from_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct traffic);
} traffic SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct chunk);
} scratch SEC(".maps");

/* The outer headers of a UDP datagram, as parsed. */
struct udp_view {
	__u8 src[16];
	__u8 dst[16];
	__be16 sport;
	__be16 dport;
	__u32 l4;      /* offset of the UDP header */
	__u32 udp_len; /* UDP header + payload */
	__u8 ipv6;
	__u8 ttl;
	__u8 no_checksum; /* IPv4 UDP with checksum 0 */
};

/* Where a rewritten datagram goes. */
struct rewrite {
	__u8 src[16];
	__u8 dst[16];
	__be16 sport;
	__be16 dport;
	__u8 channel_header[CHANNEL_HEADER];
	__u32 slot;
	__u8 to_client; /* grows by the ChannelData header instead of losing it */
};

static __always_inline void mapped_v4(__u8 out[16], __be32 addr)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &addr, 4);
}

static __always_inline int parse(struct __sk_buff *skb, struct udp_view *v)
{
	struct udphdr udp;

	if (skb->vlan_present || skb->gso_segs > 1 || skb->gso_size)
		return -1;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		__u32 total;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)))
			return -1;
		if (ip.version != 4 || ip.ihl != 5 || ip.protocol != IPPROTO_UDP)
			return -1;
		if (ip.frag_off & bpf_htons(IPV4_MORE_FRAGMENTS | IPV4_FRAGMENT_OFFSET))
			return -1;
		total = bpf_ntohs(ip.tot_len);
		if (total < sizeof(ip) + UDP_HEADER || ETH_HLEN + total > skb->len)
			return -1;
		mapped_v4(v->src, ip.saddr);
		mapped_v4(v->dst, ip.daddr);
		v->l4 = ETH_HLEN + sizeof(ip);
		v->udp_len = total - sizeof(ip);
		v->ipv6 = 0;
		v->ttl = ip.ttl;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		__u32 payload;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)))
			return -1;
		/* Any extension header (fragments included) goes to userspace. */
		if (ip6.version != 6 || ip6.nexthdr != IPPROTO_UDP)
			return -1;
		payload = bpf_ntohs(ip6.payload_len);
		if (payload < UDP_HEADER || ETH_HLEN + sizeof(ip6) + payload > skb->len)
			return -1;
		__builtin_memcpy(v->src, &ip6.saddr, 16);
		__builtin_memcpy(v->dst, &ip6.daddr, 16);
		v->l4 = ETH_HLEN + sizeof(ip6);
		v->udp_len = payload;
		v->ipv6 = 1;
		v->ttl = ip6.hop_limit;
	} else {
		return -1;
	}
	if (bpf_skb_load_bytes(skb, v->l4, &udp, sizeof(udp)))
		return -1;
	if (bpf_ntohs(udp.len) != v->udp_len)
		return -1;
	/* IPv6 forbids a zero UDP checksum; the kernel drops such datagrams itself. */
	if (udp.check == 0 && v->ipv6)
		return -1;
	v->no_checksum = udp.check == 0;
	v->sport = udp.source;
	v->dport = udp.dest;
	return 0;
}

static __always_inline __u16 fold(__s64 sum)
{
	__u32 s = (__u32)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* Moves `len` bytes at `from` to `to` (4 bytes apart), chunk by chunk, so that
 * overlapping ranges copy correctly in both directions. */
static __always_inline int move_data(struct __sk_buff *skb, __u32 from, __u32 to, __u32 len)
{
	__u32 zero = 0;
	struct chunk *buf = bpf_map_lookup_elem(&scratch, &zero);

	if (!buf)
		return -1;
	for (int i = 0; i < MAX_CHUNKS; i++) {
		/* 64-bit arithmetic: the verifier then bounds the very register passed on. */
		__u64 done = (__u64)i * CHUNK;
		__u64 offset, n;

		if (done >= len)
			break;
		n = len - done;
		if (n > CHUNK)
			n = CHUNK;
		/* Forward moves start at the front, backward moves at the end. */
		offset = to < from ? done : len - done - n;
		asm volatile("" : "+r"(n));
		if (n < 1 || n > CHUNK)
			return -1;
		if (bpf_skb_load_bytes(skb, from + offset, buf->bytes, n))
			return -1;
		if (bpf_skb_store_bytes(skb, to + offset, buf->bytes, n, 0))
			return -1;
	}
	return 0;
}

static __always_inline int write_ip(struct __sk_buff *skb, const struct udp_view *v,
				    const struct rewrite *r, __u32 udp_len)
{
	if (v->ipv6) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)))
			return -1;
		__builtin_memcpy(&ip6.saddr, r->src, 16);
		__builtin_memcpy(&ip6.daddr, r->dst, 16);
		ip6.payload_len = bpf_htons(udp_len);
		ip6.hop_limit = v->ttl - 1;
		return bpf_skb_store_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6), 0) ? -1 : 0;
	} else {
		struct iphdr ip;
		__s64 sum;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)))
			return -1;
		__builtin_memcpy(&ip.saddr, r->src + 12, 4);
		__builtin_memcpy(&ip.daddr, r->dst + 12, 4);
		ip.tot_len = bpf_htons(sizeof(ip) + udp_len);
		ip.ttl = v->ttl - 1;
		ip.check = 0;
		sum = bpf_csum_diff(0, 0, (__be32 *)&ip, sizeof(ip), 0);
		if (sum < 0)
			return -1;
		ip.check = ~fold(sum);
		return bpf_skb_store_bytes(skb, ETH_HLEN, &ip, sizeof(ip), 0) ? -1 : 0;
	}
}

/* Updates the UDP checksum for the new pseudo-header, ports, length and the ChannelData
 * header removed or added. The helpers know the skb's checksum state: with
 * CHECKSUM_PARTIAL only the pseudo-header part is applied, as the field then holds
 * the pseudo-header sum and the rest is summed when the packet leaves. */
static __always_inline int fix_udp_checksum(struct __sk_buff *skb, const struct udp_view *v,
					    const struct rewrite *r, __u32 udp_len)
{
	__be32 old_pseudo[9] = {}, new_pseudo[9] = {};
	__be32 old_fields[3] = {}, new_fields[3] = {};
	__u32 addr_words = v->ipv6 ? 8 : 2;
	__u32 csum_at = v->l4 + offsetof(struct udphdr, check);
	__s64 diff;

	if (v->no_checksum)
		return 0;
	if (v->ipv6) {
		__builtin_memcpy(old_pseudo, v->src, 16);
		__builtin_memcpy(old_pseudo + 4, v->dst, 16);
		__builtin_memcpy(new_pseudo, r->src, 16);
		__builtin_memcpy(new_pseudo + 4, r->dst, 16);
	} else {
		__builtin_memcpy(old_pseudo, v->src + 12, 4);
		__builtin_memcpy(old_pseudo + 1, v->dst + 12, 4);
		__builtin_memcpy(new_pseudo, r->src + 12, 4);
		__builtin_memcpy(new_pseudo + 1, r->dst + 12, 4);
	}
	old_pseudo[addr_words] = bpf_htonl(v->udp_len);
	new_pseudo[addr_words] = bpf_htonl(udp_len);
	diff = bpf_csum_diff(old_pseudo, (addr_words + 1) * 4, new_pseudo,
			     (addr_words + 1) * 4, 0);
	if (diff < 0)
		return -1;
	if (bpf_l4_csum_replace(skb, csum_at, 0, diff, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0))
		return -1;

	/* Ports and length, as they sit in the header (the checksum field counts as zero). */
	__builtin_memcpy(&old_fields[0], &v->sport, 2);
	__builtin_memcpy((__u8 *)&old_fields[0] + 2, &v->dport, 2);
	old_fields[1] = bpf_htonl(v->udp_len << 16);
	__builtin_memcpy(&new_fields[0], &r->sport, 2);
	__builtin_memcpy((__u8 *)&new_fields[0] + 2, &r->dport, 2);
	new_fields[1] = bpf_htonl(udp_len << 16);
	if (r->to_client)
		__builtin_memcpy(&new_fields[2], r->channel_header, CHANNEL_HEADER);
	else
		__builtin_memcpy(&old_fields[2], r->channel_header, CHANNEL_HEADER);
	diff = bpf_csum_diff(old_fields, sizeof(old_fields), new_fields, sizeof(new_fields), 0);
	if (diff < 0)
		return -1;
	if (bpf_l4_csum_replace(skb, csum_at, 0, diff, BPF_F_MARK_MANGLED_0))
		return -1;
	return 0;
}

static __always_inline void count(__u32 slot, __u8 to_client, __u32 bytes)
{
	struct traffic *t = bpf_map_lookup_elem(&traffic, &slot);

	if (!t)
		return;
	if (to_client) {
		t->to_client_packets += 1;
		t->to_client_bytes += bytes;
	} else {
		t->to_peer_packets += 1;
		t->to_peer_bytes += bytes;
	}
}

enum route { ROUTE_USERSPACE, ROUTE_REDIRECT, ROUTE_NEIGH, ROUTE_LOCAL };

/* Asks the kernel's routing table where the rewritten datagram goes. The lookup is made
 * as if the packet arrived on `lo`: bpf_fib_lookup requires forwarding on the interface
 * it is given, and only `lo` can have it without turning the host into a router. */
static __always_inline enum route route(struct __sk_buff *skb, const struct udp_view *v,
					const struct rewrite *r, __u32 udp_len,
					struct bpf_fib_lookup *fib)
{
	long rc;

	__builtin_memset(fib, 0, sizeof(*fib));
	fib->l4_protocol = IPPROTO_UDP;
	fib->sport = r->sport;
	fib->dport = r->dport;
	fib->ifindex = LOOPBACK_IFINDEX;
	if (v->ipv6) {
		fib->family = AF_INET6;
		fib->tot_len = sizeof(struct ipv6hdr) + udp_len;
		__builtin_memcpy(fib->ipv6_src, r->src, 16);
		__builtin_memcpy(fib->ipv6_dst, r->dst, 16);
	} else {
		fib->family = AF_INET;
		fib->tot_len = sizeof(struct iphdr) + udp_len;
		__builtin_memcpy(&fib->ipv4_src, r->src + 12, 4);
		__builtin_memcpy(&fib->ipv4_dst, r->dst + 12, 4);
	}
	rc = bpf_fib_lookup(skb, fib, sizeof(*fib), 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		return ROUTE_REDIRECT;
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return ROUTE_NEIGH;
	/* A local destination: only on `lo` may the rewritten packet simply go on up the
	 * stack (elsewhere a local source address would be a martian). */
	if (rc == BPF_FIB_LKUP_RET_NOT_FWDED && skb->ifindex == LOOPBACK_IFINDEX)
		return ROUTE_LOCAL;
	return ROUTE_USERSPACE;
}

static __always_inline int relay(struct __sk_buff *skb, const struct udp_view *v,
				 const struct rewrite *r)
{
	struct bpf_fib_lookup fib;
	__u32 iph = v->ipv6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	__u32 data_len, udp_len;
	enum route way;

	/* RFC 8656 "IP Header Fields for UDP-to-UDP Translation", preferred behaviour:
	 * the outgoing TTL is the incoming one less one; DSCP, ECN and DF stay as they
	 * came. A TTL of 0 or 1 goes to userspace, which sends with the default TTL. */
	if (v->ttl <= 1)
		return TC_ACT_OK;
	if (r->to_client) {
		data_len = v->udp_len - UDP_HEADER;
		udp_len = v->udp_len + CHANNEL_HEADER;
		if (udp_len > 0xffff)
			return TC_ACT_OK;
	} else {
		data_len = v->udp_len - UDP_HEADER - CHANNEL_HEADER;
		udp_len = v->udp_len - CHANNEL_HEADER;
	}
	if (data_len > MAX_DATA)
		return TC_ACT_OK;
	way = route(skb, v, r, udp_len, &fib);
	if (way == ROUTE_USERSPACE)
		return TC_ACT_OK;

	/* From here on the packet is being changed: a failure drops it. */
	if (r->to_client) {
		/* Drop any link-layer trailer first, so the grow below always changes the
		 * length (which also retires a CHECKSUM_COMPLETE value we would invalidate). */
		if (skb->len != ETH_HLEN + iph + v->udp_len &&
		    bpf_skb_change_tail(skb, ETH_HLEN + iph + v->udp_len, 0))
			return TC_ACT_SHOT;
		if (bpf_skb_change_tail(skb, ETH_HLEN + iph + udp_len, 0))
			return TC_ACT_SHOT;
		if (move_data(skb, v->l4 + UDP_HEADER, v->l4 + UDP_HEADER + CHANNEL_HEADER,
			      data_len))
			return TC_ACT_SHOT;
		if (bpf_skb_store_bytes(skb, v->l4 + UDP_HEADER, r->channel_header,
					CHANNEL_HEADER, 0))
			return TC_ACT_SHOT;
	} else {
		if (move_data(skb, v->l4 + UDP_HEADER + CHANNEL_HEADER, v->l4 + UDP_HEADER,
			      data_len))
			return TC_ACT_SHOT;
		if (bpf_skb_change_tail(skb, ETH_HLEN + iph + udp_len, 0))
			return TC_ACT_SHOT;
	}
	{
		struct {
			__be16 source;
			__be16 dest;
			__be16 len;
		} udp = { r->sport, r->dport, bpf_htons(udp_len) };

		if (bpf_skb_store_bytes(skb, v->l4, &udp, sizeof(udp), 0))
			return TC_ACT_SHOT;
	}
	if (write_ip(skb, v, r, udp_len))
		return TC_ACT_SHOT;
	if (fix_udp_checksum(skb, v, r, udp_len))
		return TC_ACT_SHOT;
	count(r->slot, r->to_client, data_len);

	if (way == ROUTE_LOCAL)
		return TC_ACT_OK;
	if (way == ROUTE_NEIGH) {
		struct bpf_redir_neigh nh = {};

		nh.nh_family = fib.family;
		if (fib.family == AF_INET6)
			__builtin_memcpy(nh.ipv6_nh, fib.ipv6_dst, 16);
		else
			nh.ipv4_nh = fib.ipv4_dst;
		return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
	}
	{
		__u8 macs[12];

		__builtin_memcpy(macs, fib.dmac, 6);
		__builtin_memcpy(macs + 6, fib.smac, 6);
		if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0))
			return TC_ACT_SHOT;
	}
	return bpf_redirect(fib.ifindex, 0);
}

/* ChannelData from a client on a bound channel, exactly as long as its length field says
 * (over UDP no padding is needed, RFC 8656 §12.5; padded or trailing bytes go to
 * userspace, which accepts them). */
static __always_inline int from_client(struct __sk_buff *skb, const struct udp_view *v)
{
	struct client_key key = {};
	struct client_value *found;
	struct rewrite r = {};
	__u8 header[CHANNEL_HEADER];

	if (v->udp_len < UDP_HEADER + CHANNEL_HEADER)
		return -1;
	if (bpf_skb_load_bytes(skb, v->l4 + UDP_HEADER, header, sizeof(header)))
		return -1;
	if ((header[0] & 0xc0) != 0x40)
		return -1;
	if ((((__u32)header[2] << 8) | header[3]) != v->udp_len - UDP_HEADER - CHANNEL_HEADER)
		return -1;
	__builtin_memcpy(key.client_ip, v->src, 16);
	__builtin_memcpy(key.server_ip, v->dst, 16);
	key.client_port = v->sport;
	key.server_port = v->dport;
	__builtin_memcpy(&key.channel, header, 2);
	found = bpf_map_lookup_elem(&from_clients, &key);
	if (!found)
		return -1;
	__builtin_memcpy(r.src, found->relay_ip, 16);
	__builtin_memcpy(r.dst, found->peer_ip, 16);
	r.sport = found->relay_port;
	r.dport = found->peer_port;
	r.slot = found->slot;
	__builtin_memcpy(r.channel_header, header, CHANNEL_HEADER);
	r.to_client = 0;
	return relay(skb, v, &r);
}

/* A datagram from a channel-bound peer to a relay address. */
static __always_inline int from_peer(struct __sk_buff *skb, const struct udp_view *v)
{
	struct peer_key key = {};
	struct peer_value *found;
	struct rewrite r = {};
	__u32 data_len = v->udp_len - UDP_HEADER;

	__builtin_memcpy(key.peer_ip, v->src, 16);
	__builtin_memcpy(key.relay_ip, v->dst, 16);
	key.peer_port = v->sport;
	key.relay_port = v->dport;
	found = bpf_map_lookup_elem(&from_peers, &key);
	if (!found)
		return -1;
	__builtin_memcpy(r.src, found->server_ip, 16);
	__builtin_memcpy(r.dst, found->client_ip, 16);
	r.sport = found->server_port;
	r.dport = found->client_port;
	r.slot = found->slot;
	__builtin_memcpy(r.channel_header, &found->channel, 2);
	r.channel_header[2] = data_len >> 8;
	r.channel_header[3] = data_len & 0xff;
	r.to_client = 1;
	return relay(skb, v, &r);
}

SEC("classifier")
int turn_relay(struct __sk_buff *skb)
{
	struct udp_view v = {};
	int verdict;

	if (parse(skb, &v))
		return TC_ACT_OK;
	verdict = from_client(skb, &v);
	if (verdict >= 0)
		return verdict;
	verdict = from_peer(skb, &v);
	if (verdict >= 0)
		return verdict;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
