/**
 * TUN/TAP constants from Linux's uapi <linux/if_tun.h> (ioctls, TUNSETIFF
 * flags, TUNSETOFFLOAD bits) and <linux/if.h> (IFNAMSIZ, struct ifreq), for
 * x86_64. The ioctl numbers are the header's _IOW/_IOR('T', nr, type)
 * expanded: dir << 30 | sizeof(type) << 16 | 'T' (0x54) << 8 | nr, with
 * _IOC_WRITE = 1, _IOC_READ = 2 and a 4-byte int / unsigned int.
 */

/** <linux/if.h> IFNAMSIZ: an interface name is at most IFNAMSIZ - 1 = 15 bytes plus its NUL. */
export const IFNAMSIZ = 16;
/** sizeof(struct ifreq) on x86_64: char ifr_name[IFNAMSIZ] then a 24-byte union (ifr_flags: short at offset 16). */
export const SIZEOF_IFREQ = 40;
/** Offset of ifr_flags (short) in struct ifreq. */
export const IFREQ_OFF_FLAGS = 16;

/** #define TUNSETIFF _IOW('T', 202, int) */
export const TUNSETIFF = 0x400454ca;
/** #define TUNSETPERSIST _IOW('T', 203, int) */
export const TUNSETPERSIST = 0x400454cb;
/** #define TUNGETFEATURES _IOR('T', 207, unsigned int) */
export const TUNGETFEATURES = 0x800454cf;
/** #define TUNSETOFFLOAD _IOW('T', 208, unsigned int) */
export const TUNSETOFFLOAD = 0x400454d0;
/** #define TUNGETIFF _IOR('T', 210, unsigned int) (fills a struct ifreq) */
export const TUNGETIFF = 0x800454d2;
/** #define TUNGETVNETHDRSZ _IOR('T', 215, int) */
export const TUNGETVNETHDRSZ = 0x800454d7;
/** #define TUNSETVNETHDRSZ _IOW('T', 216, int) */
export const TUNSETVNETHDRSZ = 0x400454d8;

/** TUNSETIFF ifr_flags: #define IFF_TUN 0x0001 */
export const IFF_TUN = 0x0001;
/** #define IFF_TAP 0x0002 */
export const IFF_TAP = 0x0002;
/** #define IFF_MULTI_QUEUE 0x0100 */
export const IFF_MULTI_QUEUE = 0x0100;
/** #define IFF_PERSIST 0x0800 (read-only flag, reported by TUNGETIFF) */
export const IFF_PERSIST = 0x0800;
/** #define IFF_NO_PI 0x1000: no struct tun_pi before each packet */
export const IFF_NO_PI = 0x1000;
/** #define IFF_VNET_HDR 0x4000: a struct virtio_net_hdr before each packet */
export const IFF_VNET_HDR = 0x4000;
/** #define IFF_TUN_EXCL 0x8000 */
export const IFF_TUN_EXCL = 0x8000;

/** TUNSETOFFLOAD: #define TUN_F_CSUM 0x01 ("You can hand me unchecksummed packets.") */
export const TUN_F_CSUM = 0x01;
/** #define TUN_F_TSO4 0x02 ("I can handle TSO for IPv4 packets") */
export const TUN_F_TSO4 = 0x02;
/** #define TUN_F_TSO6 0x04 ("I can handle TSO for IPv6 packets") */
export const TUN_F_TSO6 = 0x04;
/** #define TUN_F_TSO_ECN 0x08 ("I can handle TSO with ECN bits.") */
export const TUN_F_TSO_ECN = 0x08;
/** #define TUN_F_UFO 0x10 ("I can handle UFO packets") */
export const TUN_F_UFO = 0x10;
