/**
 * An epoll loop for a thread that serves file descriptors (like Firecracker's
 * event-manager): callers register an fd with a handler, and `runOnce` waits
 * and dispatches. The device thread blocks here between guest notifications
 * (ioeventfds), backend readiness (TAP, sockets) and timers.
 */
import { EFD_CLOEXEC, EFD_NONBLOCK, EPOLL_CLOEXEC, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLLIN, SIZEOF_EPOLL_EVENT } from '../generated/libc.js';
import * as libc from '../sys/libc.js';

export type EventHandler = (events: number) => void;

/** Most events taken from the kernel per wait. */
const MAX_EVENTS = 64;

export class EventManager {
  private readonly epfd = libc.epollCreate(EPOLL_CLOEXEC);
  private readonly handlers = new Map<number, EventHandler>();
  private readonly buf = new Uint8Array(MAX_EVENTS * SIZEOF_EPOLL_EVENT);

  add(fd: number, handler: EventHandler, events = EPOLLIN): void {
    libc.epollCtl(this.epfd, EPOLL_CTL_ADD, fd, events, fd);
    this.handlers.set(fd, handler);
  }

  remove(fd: number): void {
    if (!this.handlers.delete(fd)) return;
    libc.epollCtl(this.epfd, EPOLL_CTL_DEL, fd, 0, fd);
  }

  /** Waits up to `timeoutMs` (-1: forever) and runs the handlers of ready fds; returns how many ran. */
  runOnce(timeoutMs = -1): number {
    const ready = libc.epollWait(this.epfd, this.buf, timeoutMs);
    for (const { token, events } of ready) this.handlers.get(token)?.(events);
    return ready.length;
  }

  close(): void {
    libc.close(this.epfd);
  }
}

const COUNTER = new Uint8Array(8);

/** A non-blocking eventfd (a notification channel between threads, or to and from KVM). */
export function newEventFd(): number {
  return libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

/** Clears an eventfd's counter; returns false when it was not signalled. */
export function drainEventFd(fd: number): boolean {
  try {
    libc.read(fd, COUNTER, 'eventfd read');
    return true;
  } catch {
    return false; // EAGAIN
  }
}

const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);

export function signalEventFd(fd: number): void {
  libc.write(fd, ONE, 'eventfd write');
}
