/** The part of redlock 4's API the scripting tests use (the package ships no types). */
declare module 'redlock' {
  import type { Redis } from 'ioredis';
  interface Lock {
    readonly value: string;
    extend(ttl: number): Promise<Lock>;
    unlock(): Promise<void>;
  }
  export default class Redlock {
    constructor(clients: Redis[], options?: { retryCount?: number; retryDelay?: number; driftFactor?: number });
    lock(resource: string, ttl: number): Promise<Lock>;
  }
}
