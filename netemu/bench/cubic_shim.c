/* netemu bench pkt-suite: an LD_PRELOAD shim giving every new TCP socket cubic.
 * packetdrill's scripts assume cubic (gtests/net/common/defaults.sh sets it by sysctl),
 * which a non-initial network namespace may refuse; this sets it per socket instead.
 * Build: cc -shared -fPIC -O2 -o cubic_shim.so cubic_shim.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

int socket(int domain, int type, int protocol)
{
	static int (*real_socket)(int, int, int);
	int fd, saved;

	if (!real_socket)
		real_socket = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
	fd = real_socket(domain, type, protocol);
	if (fd >= 0 && (domain == AF_INET || domain == AF_INET6) &&
	    (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_STREAM &&
	    (protocol == 0 || protocol == IPPROTO_TCP)) {
		saved = errno;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, "cubic", 5);
		errno = saved;
	}
	return fd;
}
