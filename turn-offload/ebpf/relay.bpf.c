// SPDX-License-Identifier: MIT OR GPL-2.0-only
/*
 * The TURN ChannelData fast path: a TC classifier on the server's interfaces.
 *
 * Client -> peer: ChannelData sent from a client's 5-tuple to the server's listening
 * address on a bound channel becomes a UDP datagram from the relay address to the peer.
 * Peer -> client: a datagram from a channel-bound peer to the relay address becomes
 * ChannelData from the listening address to the client.
 *
 * Everything the program does not relay it returns untouched with TC_ACT_UNSPEC ("no
 * verdict"): the next TC program on the interface runs (another server's, a CNI's),
 * and after the last one the userspace server gets the packet exactly as without it. The map layouts are
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
/* Payload bytes are moved in chunks through a per-CPU scratch buffer; a chunk holds any
 * payload that fits a 1500-byte MTU, so those cost one load and one store. */
#define CHUNK 1536
#define MAX_DATA 4096
#define MAX_CHUNKS ((MAX_DATA + CHUNK - 1) / CHUNK)
/* The rewritten headers (at most Ethernet + IPv6 + UDP + ChannelData, 66 bytes) are built
 * in the scratch buffer just before the first payload chunk, which starts at HEADROOM:
 * both then go out with one store. A multiple of 4, so that the IP headers built there
 * are 4-byte aligned. */
#define HEADROOM 72
/* Bytes the parser reads in place: the headers and a ChannelData header. */
#define V4_HEADERS (ETH_HLEN + sizeof(struct iphdr) + UDP_HEADER)
#define V6_HEADERS (ETH_HLEN + sizeof(struct ipv6hdr) + UDP_HEADER)
/* from_client/from_peer: the packet is not one of their bindings'. Not a TC verdict. */
#define NO_ENTRY (-2)

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

/* Headers go at a variable offset below HEADROOM, and the verifier bounds a store from
 * there by the largest offset plus the largest size: hence 2 * HEADROOM. */
struct chunk {
	__u8 bytes[2 * HEADROOM + CHUNK];
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
	__u8 src[16] __attribute__((aligned(4))); /* summed as 32-bit words */
	__u8 dst[16] __attribute__((aligned(4)));
	__be16 sport;
	__be16 dport;
	__u32 l4;      /* offset of the UDP header */
	__u32 udp_len; /* UDP header + payload */
	__u8 ipv6;
	__u8 ttl;
	__u8 no_checksum; /* IPv4 UDP with checksum 0 */
	__u8 head[CHANNEL_HEADER]; /* the first payload bytes, if there are that many */
};

/* Where a rewritten datagram goes. */
struct rewrite {
	__u8 src[16] __attribute__((aligned(4)));
	__u8 dst[16] __attribute__((aligned(4)));
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

/* The parser reads the headers in place (direct packet access), which needs them in the
 * skb's linear part. They nearly always are; if not, they are pulled in, which changes how
 * the packet is stored, not what it holds. */
static __always_inline void pull_headers(struct __sk_buff *skb, __u32 want)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	if (data + want > end)
		bpf_skb_pull_data(skb, want < skb->len ? want : skb->len);
}

static __always_inline int parse(struct __sk_buff *skb, struct udp_view *v)
{
	void *data, *end;
	struct udphdr *udp;

	if (skb->vlan_present || skb->gso_segs > 1 || skb->gso_size)
		return -1;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip;
		__u32 total;

		pull_headers(skb, V4_HEADERS + CHANNEL_HEADER);
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		if (data + V4_HEADERS > end)
			return -1;
		ip = data + ETH_HLEN;
		if (ip->version != 4 || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
			return -1;
		if (ip->frag_off & bpf_htons(IPV4_MORE_FRAGMENTS | IPV4_FRAGMENT_OFFSET))
			return -1;
		total = bpf_ntohs(ip->tot_len);
		if (total < sizeof(*ip) + UDP_HEADER || ETH_HLEN + total > skb->len)
			return -1;
		mapped_v4(v->src, ip->saddr);
		mapped_v4(v->dst, ip->daddr);
		v->l4 = ETH_HLEN + sizeof(*ip);
		v->udp_len = total - sizeof(*ip);
		v->ipv6 = 0;
		v->ttl = ip->ttl;
		udp = (void *)(ip + 1);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6;
		__u32 payload;

		pull_headers(skb, V6_HEADERS + CHANNEL_HEADER);
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		if (data + V6_HEADERS > end)
			return -1;
		ip6 = data + ETH_HLEN;
		/* Any extension header (fragments included) goes to userspace. */
		if (ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
			return -1;
		payload = bpf_ntohs(ip6->payload_len);
		if (payload < UDP_HEADER || ETH_HLEN + sizeof(*ip6) + payload > skb->len)
			return -1;
		__builtin_memcpy(v->src, &ip6->saddr, 16);
		__builtin_memcpy(v->dst, &ip6->daddr, 16);
		v->l4 = ETH_HLEN + sizeof(*ip6);
		v->udp_len = payload;
		v->ipv6 = 1;
		v->ttl = ip6->hop_limit;
		udp = (void *)(ip6 + 1);
	} else {
		return -1;
	}
	if (bpf_ntohs(udp->len) != v->udp_len)
		return -1;
	/* IPv6 forbids a zero UDP checksum; the kernel drops such datagrams itself. */
	if (udp->check == 0 && v->ipv6)
		return -1;
	v->no_checksum = udp->check == 0;
	v->sport = udp->source;
	v->dport = udp->dest;
	if (v->udp_len >= UDP_HEADER + CHANNEL_HEADER) {
		__u8 *head = (void *)(udp + 1);

		/* Within the datagram, so pulled in above. */
		if ((void *)head + CHANNEL_HEADER > end)
			return -1;
		__builtin_memcpy(v->head, head, CHANNEL_HEADER);
	}
	return 0;
}

/* Ones-complement arithmetic (RFC 1071) on words as they lie in memory, carried in 64
 * bits: a 16-bit word counts the same in either half of a 32-bit one, and adding ~x
 * subtracts x. */
static __always_inline __u32 fold32(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	return (__u32)s;
}

static __always_inline __u16 fold(__u64 sum)
{
	__u32 s = fold32(sum);

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

static __always_inline __u64 neg(__u32 x)
{
	return (__u32)~x;
}

/* new - old for a 16-byte address; IPv4 ones are mapped, so the equal prefixes cancel. */
static __always_inline __u64 addr_delta(const __u8 *new_ip, const __u8 *old_ip)
{
	const __u32 *n = (const void *)new_ip, *o = (const void *)old_ip;

	return (__u64)n[0] + n[1] + n[2] + n[3] + neg(o[0]) + neg(o[1]) + neg(o[2]) + neg(o[3]);
}

/* Copies the Ethernet, IP and UDP headers (`len` bytes, a constant) from the packet to the
 * scratch buffer. Both sit 2 bytes off 4-byte alignment (the IP header on it), so 32-bit
 * words after the first two bytes are aligned even where the kernel insists on it. */
static __always_inline void copy_headers(__u8 *to, const __u8 *from, const int len)
{
	*(__u16 *)to = *(const __u16 *)from;
#pragma unroll
	for (int i = 2; i < len; i += 4)
		*(__u32 *)(to + i) = *(const __u32 *)(from + i);
}

/* Moves `len` payload bytes at `from` to `to` (4 bytes apart), chunk by chunk through the
 * scratch buffer, so that overlapping ranges copy correctly in both directions. The
 * rewritten headers, `to` bytes the caller built just below HEADROOM, go out in the same
 * store as the first chunk: a small datagram costs one load and one store. */
static __always_inline int move_data(struct __sk_buff *skb, struct chunk *buf, __u32 from,
				     __u32 to, __u32 len)
{
	__u64 start = HEADROOM - to, size = to;

	if (len == 0) {
		asm volatile("" : "+r"(start), "+r"(size));
		if (start > HEADROOM || size < 1 || size > HEADROOM)
			return -1;
		return bpf_skb_store_bytes(skb, 0, buf->bytes + start, size, 0) ? -1 : 0;
	}
	for (int i = 0; i < MAX_CHUNKS; i++) {
		/* 64-bit arithmetic: the verifier then bounds the very register passed on. */
		__u64 done = (__u64)i * CHUNK;
		__u64 offset, n, at;

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
		if (bpf_skb_load_bytes(skb, from + offset, buf->bytes + HEADROOM, n))
			return -1;
		if (offset == 0) {
			/* The first chunk: with the headers in front of it. */
			start = HEADROOM - to;
			size = to + n;
			at = 0;
		} else {
			start = HEADROOM;
			size = n;
			at = to + offset;
		}
		asm volatile("" : "+r"(start), "+r"(size));
		if (start > HEADROOM || size < 1 || size > HEADROOM + CHUNK)
			return -1;
		if (bpf_skb_store_bytes(skb, at, buf->bytes + start, size, 0))
			return -1;
	}
	return 0;
}

/* Builds the rewritten Ethernet (the next hop's MACs from `fib`, or with NULL the packet's
 * own), IP and UDP
 * headers, and for a datagram to the client the ChannelData header, in `hdr` (the scratch
 * buffer, `hdr` + `hlen` = HEADROOM) from the packet's own, read in place. The UDP
 * checksum field keeps its value; fix_udp_checksum updates it in the packet. */
static __always_inline int build_headers(struct __sk_buff *skb, const struct udp_view *v,
					 const struct rewrite *r, __u32 udp_len,
					 const struct bpf_fib_lookup *fib, __u8 *buf)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u32 extra = r->to_client ? CHANNEL_HEADER : 0;
	struct udphdr *udp;
	__u8 *hdr;

	if (v->ipv6) {
		struct ipv6hdr *ip6;

		if (data + V6_HEADERS > end)
			return -1;
		hdr = buf + HEADROOM - V6_HEADERS - extra;
		copy_headers(hdr, data, V6_HEADERS);
		ip6 = (void *)(hdr + ETH_HLEN);
		__builtin_memcpy(&ip6->saddr, r->src, 16);
		__builtin_memcpy(&ip6->daddr, r->dst, 16);
		ip6->payload_len = bpf_htons(udp_len);
		ip6->hop_limit = v->ttl - 1;
		udp = (void *)(ip6 + 1);
	} else {
		struct iphdr *ip;
		__u32 *w;

		if (data + V4_HEADERS > end)
			return -1;
		hdr = buf + HEADROOM - V4_HEADERS - extra;
		copy_headers(hdr, data, V4_HEADERS);
		ip = (void *)(hdr + ETH_HLEN);
		__builtin_memcpy(&ip->saddr, r->src + 12, 4);
		__builtin_memcpy(&ip->daddr, r->dst + 12, 4);
		ip->tot_len = bpf_htons(sizeof(*ip) + udp_len);
		ip->ttl = v->ttl - 1;
		ip->check = 0;
		w = (void *)ip;
		ip->check = ~fold((__u64)w[0] + w[1] + w[2] + w[3] + w[4]);
		udp = (void *)(ip + 1);
	}
	if (fib) {
		__builtin_memcpy(hdr, fib->dmac, ETH_ALEN);
		__builtin_memcpy(hdr + ETH_ALEN, fib->smac, ETH_ALEN);
	}
	udp->source = r->sport;
	udp->dest = r->dport;
	udp->len = bpf_htons(udp_len);
	if (r->to_client)
		__builtin_memcpy(udp + 1, r->channel_header, CHANNEL_HEADER);
	return 0;
}

/* Updates the UDP checksum for the new pseudo-header, ports, length and the ChannelData
 * header removed or added. The deltas are summed here; the kernel helper applies them
 * knowing the skb's checksum state: with CHECKSUM_PARTIAL only the pseudo-header part,
 * as the field then holds the pseudo-header sum and the rest is summed when the packet
 * leaves. */
static __always_inline int fix_udp_checksum(struct __sk_buff *skb, const struct udp_view *v,
					    const struct rewrite *r, __u32 udp_len)
{
	__u32 csum_at = v->l4 + offsetof(struct udphdr, check);
	__u64 len = (__u64)bpf_htons(udp_len) + neg(bpf_htons(v->udp_len));
	__u32 channel, pseudo, fields;

	if (v->no_checksum)
		return 0;
	pseudo = fold32(addr_delta(r->src, v->src) + addr_delta(r->dst, v->dst) + len);
	if (bpf_l4_csum_replace(skb, csum_at, 0, pseudo, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0))
		return -1;

	/* Ports and length, as they sit in the header, and the ChannelData header. */
	__builtin_memcpy(&channel, r->channel_header, CHANNEL_HEADER);
	fields = fold32((__u64)r->sport + r->dport + neg(v->sport) + neg(v->dport) + len +
			(r->to_client ? channel : neg(channel)));
	if (bpf_l4_csum_replace(skb, csum_at, 0, fields, BPF_F_MARK_MANGLED_0))
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
	__u32 data_len, udp_len, zero = 0;
	struct chunk *buf;
	enum route way;

	/* RFC 8656 "IP Header Fields for UDP-to-UDP Translation", preferred behaviour:
	 * the outgoing TTL is the incoming one less one; DSCP, ECN and DF stay as they
	 * came. A TTL of 0 or 1 goes to userspace, which sends with the default TTL. */
	if (v->ttl <= 1)
		return TC_ACT_UNSPEC;
	if (r->to_client) {
		data_len = v->udp_len - UDP_HEADER;
		udp_len = v->udp_len + CHANNEL_HEADER;
		if (udp_len > 0xffff)
			return TC_ACT_UNSPEC;
	} else {
		data_len = v->udp_len - UDP_HEADER - CHANNEL_HEADER;
		udp_len = v->udp_len - CHANNEL_HEADER;
	}
	if (data_len > MAX_DATA)
		return TC_ACT_UNSPEC;
	way = route(skb, v, r, udp_len, &fib);
	if (way == ROUTE_USERSPACE)
		return TC_ACT_UNSPEC;
	buf = bpf_map_lookup_elem(&scratch, &zero);
	if (!buf)
		return TC_ACT_UNSPEC;
	/* Routed packets get the next hop's MACs here; bpf_redirect_neigh fills them in. */
	if (build_headers(skb, v, r, udp_len, way == ROUTE_REDIRECT ? &fib : NULL, buf->bytes))
		return TC_ACT_UNSPEC;

	/* From here on the packet is being changed: a failure drops it. */
	if (r->to_client) {
		/* Drop any link-layer trailer first, so the grow below always changes the
		 * length (which also retires a CHECKSUM_COMPLETE value we would invalidate). */
		if (skb->len != ETH_HLEN + iph + v->udp_len &&
		    bpf_skb_change_tail(skb, ETH_HLEN + iph + v->udp_len, 0))
			return TC_ACT_SHOT;
		if (bpf_skb_change_tail(skb, ETH_HLEN + iph + udp_len, 0))
			return TC_ACT_SHOT;
		if (move_data(skb, buf, v->l4 + UDP_HEADER, v->l4 + UDP_HEADER + CHANNEL_HEADER,
			      data_len))
			return TC_ACT_SHOT;
	} else {
		if (move_data(skb, buf, v->l4 + UDP_HEADER + CHANNEL_HEADER, v->l4 + UDP_HEADER,
			      data_len))
			return TC_ACT_SHOT;
		if (bpf_skb_change_tail(skb, ETH_HLEN + iph + udp_len, 0))
			return TC_ACT_SHOT;
	}
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
	const __u8 *header = v->head;

	if (v->udp_len < UDP_HEADER + CHANNEL_HEADER)
		return NO_ENTRY;
	if ((header[0] & 0xc0) != 0x40)
		return NO_ENTRY;
	if ((((__u32)header[2] << 8) | header[3]) != v->udp_len - UDP_HEADER - CHANNEL_HEADER)
		return NO_ENTRY;
	__builtin_memcpy(key.client_ip, v->src, 16);
	__builtin_memcpy(key.server_ip, v->dst, 16);
	key.client_port = v->sport;
	key.server_port = v->dport;
	__builtin_memcpy(&key.channel, header, 2);
	found = bpf_map_lookup_elem(&from_clients, &key);
	if (!found)
		return NO_ENTRY;
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
		return NO_ENTRY;
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
		return TC_ACT_UNSPEC;
	verdict = from_client(skb, &v);
	if (verdict != NO_ENTRY)
		return verdict;
	verdict = from_peer(skb, &v);
	if (verdict != NO_ENTRY)
		return verdict;
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
