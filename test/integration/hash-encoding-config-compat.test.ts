/**
 * hash-max-listpack-entries / hash-max-listpack-value (and their -ziplist- aliases): CONFIG GET,
 * CONFIG SET with Redis' checks, and OBJECT ENCODING of namespaces following them — replies
 * compared byte for byte with redis-server. (Redis keeps the encoding a hash was written with;
 * these scripts set the limits before writing, where both servers agree.)
 */
import { describe } from 'node:test';
import { compareServersForSuite, itMatchesRedis, type Cmd } from '../helpers/compare.js';

const SCRIPTS: Record<string, Cmd[]> = {
  'CONFIG GET and SET of the hash listpack limits': [
    ['CONFIG', 'GET', 'hash-max-listpack-entries'],
    ['CONFIG', 'GET', 'HASH-MAX-ZIPLIST-VALUE'],
    ['CONFIG', 'SET', 'hash-max-ziplist-entries', '10'],
    ['CONFIG', 'GET', 'hash-max-listpack-entries'],
    ['CONFIG', 'GET', 'hash-max-ziplist-entries'],
    ['CONFIG', 'SET', 'hash-max-listpack-value', '1k'],
    ['CONFIG', 'GET', 'hash-max-ziplist-value'],
    ['CONFIG', 'SET', 'hash-max-listpack-value', '-1'],
    ['CONFIG', 'SET', 'hash-max-listpack-value', 'abc'],
    ['CONFIG', 'SET', 'hash-max-listpack-entries', '-1'],
    ['CONFIG', 'SET', 'hash-max-listpack-entries', '99999999999999999999'],
    ['CONFIG', 'SET', 'hash-max-listpack-entries', '1', 'hash-max-listpack-entries', '2'],
    ['CONFIG', 'SET', 'hash-max-ziplist-entries', '5', 'hash-max-listpack-entries', '6'],
    ['CONFIG', 'GET', 'hash-max-listpack-entries'],
    ['CONFIG', 'SET', 'hash-max-listpack-entries', '512', 'hash-max-listpack-value', '64'],
    ['CONFIG', 'GET', 'hash-max-listpack-value'],
  ],
  'OBJECT ENCODING of a namespace follows the limits': [
    ['CONFIG', 'SET', 'hash-max-listpack-entries', '2'],
    ['HSET', 'two', 'a', '1', 'b', '2'],
    ['HSET', 'three', 'a', '1', 'b', '2', 'c', '3'],
    ['OBJECT', 'ENCODING', 'two'],
    ['OBJECT', 'ENCODING', 'three'],
    ['CONFIG', 'SET', 'hash-max-listpack-entries', '512', 'hash-max-listpack-value', '4'],
    ['HSET', 'short', 'f', 'abcd'],
    ['HSET', 'long', 'f', 'abcde'],
    ['HSET', 'longfield', 'field', '1'],
    ['OBJECT', 'ENCODING', 'short'],
    ['OBJECT', 'ENCODING', 'long'],
    ['OBJECT', 'ENCODING', 'longfield'],
    ['CONFIG', 'SET', 'hash-max-ziplist-entries', '0'],
    ['HSET', 'none', 'a', '1'],
    ['OBJECT', 'ENCODING', 'none'],
    ['CONFIG', 'SET', 'hash-max-listpack-entries', '512', 'hash-max-listpack-value', '64'],
  ],
};

describe('hash listpack limits against redis-server', () => {
  const servers = compareServersForSuite();
  itMatchesRedis(servers.ports, SCRIPTS);
});
