/**
 * EXPIRE family and SET/GETEX expiry arguments at the edges of Redis' 64-bit millisecond range,
 * against a real redis-server, RESP2 and RESP3. Times beyond what we keep exactly (±2^53 ms) are
 * accepted as Redis accepts them; what TTL/PEXPIRETIME then report is covered in the handler tests.
 */
import { describe } from 'node:test';
import { compareServersForSuite, itMatchesRedis, type Cmd } from '../helpers/compare.js';
import { bothProtocols } from '../helpers/compare-resp3.js';

const SCRIPTS: Record<string, Cmd[]> = {
  'PEXPIREAT and EXPIREAT beyond 2^53 ms': [
    ['SET', 'k', 'v'],
    ['PEXPIREAT', 'k', '9223372036854775807'],
    ['EXISTS', 'k'],
    ['PEXPIREAT', 'k', '9223372036854770000'],
    ['PEXPIREAT', 'k', '9007199254740993'],
    ['EXPIREAT', 'k', '9223372036854775'],
    ['EXISTS', 'k'],
    ['EXPIREAT', 'k', '9223372036854776'],
    ['EXPIREAT', 'k', '9223372036854775807'],
    ['EXPIREAT', 'nokey', '9223372036854775807'],
    ['PEXPIREAT', 'nokey', '9223372036854775807'],
    ['PEXPIREAT', 'k', '9223372036854775808'],
    ['EXISTS', 'k'],
  ],
  'big negative times delete the key': [
    ['SET', 'a', 'v'],
    ['PEXPIREAT', 'a', '-9223372036854770000'],
    ['TTL', 'a'],
    ['SET', 'b', 'v'],
    ['PEXPIREAT', 'b', '-9223372036854775808'],
    ['EXISTS', 'b'],
    ['SET', 'c', 'v'],
    ['EXPIREAT', 'c', '-9223372036854775'],
    ['EXISTS', 'c'],
    ['SET', 'd', 'v'],
    ['EXPIREAT', 'd', '-9223372036854776'],
    ['EXPIRE', 'd', '-9223372036854775808'],
    ['EXISTS', 'd'],
    ['PEXPIRE', 'd', '-9223372036854775808'],
    ['EXISTS', 'd'],
    ['SET', 'e', 'v'],
    ['EXPIRE', 'e', '-9223372036854775'],
    ['EXISTS', 'e'],
  ],
  'relative times that overflow with the base time': [
    ['SET', 'k', 'v'],
    ['EXPIRE', 'k', '9223370399119966'],
    ['PEXPIRE', 'k', '9223372036854775807'],
    ['PEXPIRE', 'k', '9223372036854775000'],
    ['EXPIRE', 'k', '9223372036854775'],
    ['EXPIRE', 'k', '9000000000000'],
    ['TTL', 'k'],
    ['EXISTS', 'k'],
  ],
  'GT and LT with huge times': [
    ['SET', 'k', 'v'],
    ['PEXPIREAT', 'k', '9223372036854775807', 'GT'],
    ['PEXPIREAT', 'k', '9223372036854775806', 'LT'],
    ['PEXPIREAT', 'k', '9007199254740992', 'NX'],
    ['PEXPIREAT', 'k', '9007199254740000', 'LT'],
    ['PEXPIRETIME', 'k'],
  ],
  'SET and GETEX take Redis\' range too': [
    ['SET', 'k', 'v', 'PXAT', '9223372036854775807'],
    ['EXISTS', 'k'],
    ['SET', 'k', 'v', 'PX', '9223372036854775807'],
    ['SET', 'k', 'v', 'EXAT', '9223372036854775'],
    ['SET', 'k', 'v', 'EXAT', '9223372036854776'],
    ['SET', 'k', 'v', 'EX', '9223372036854775'],
    ['SET', 'k', 'v', 'PXAT', '-1'],
    ['GETEX', 'k', 'PXAT', '9223372036854775807'],
    ['GETEX', 'k', 'EX', '9223370399119966'],
    ['EXISTS', 'k'],
  ],
};

describe('expiry at the edges of the 64-bit range: replies match redis-server', () => {
  const servers = compareServersForSuite();
  itMatchesRedis(servers.ports, bothProtocols(SCRIPTS));
});
