/**
 * Counters, bitmaps and the other read-modify-write commands through the dispatcher without
 * sockets, in every write mode (sync/async, with and without compression): TTLs kept, values
 * stored as Redis stores them, refusals that write nothing.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, WRITE_MODES } from '../helpers/harness.js';

for (const mode of WRITE_MODES) {
  describe(`counters (${mode.name})`, () => {
    let h: Harness;
    before(() => {
      h = Harness.open(mode.opts);
    });
    after(async () => {
      assert.deepEqual(h.failures, []);
      await h.close();
    });

    it('INCR family keeps the key\'s TTL; a new counter has none', async () => {
      await h.run('SET', 'c', '41', 'PX', 5000);
      assert.equal(await h.resp('INCR', 'c'), ':42\r\n');
      assert.equal(await h.resp('INCRBY', 'c', -2), ':40\r\n');
      assert.equal(await h.resp('DECR', 'c'), ':39\r\n');
      assert.equal(await h.resp('DECRBY', 'c', 9), ':30\r\n');
      assert.equal(await h.resp('PTTL', 'c'), ':5000\r\n');
      assert.equal(await h.resp('INCRBYFLOAT', 'c', '0.5'), '$4\r\n30.5\r\n');
      assert.equal(await h.resp('PTTL', 'c'), ':5000\r\n');
      assert.equal(await h.resp('GET', 'c'), '$4\r\n30.5\r\n');
      assert.equal(await h.resp('INCR', 'fresh'), ':1\r\n');
      assert.equal(await h.resp('TTL', 'fresh'), ':-1\r\n');
      // The TTL still runs out on time.
      h.now += 5000;
      assert.equal(await h.resp('GET', 'c'), '$-1\r\n');
      assert.equal(await h.resp('INCR', 'c'), ':1\r\n');
      assert.equal(await h.resp('TTL', 'c'), ':-1\r\n');
    });

    it('64-bit results beyond 2^53 are exact', async () => {
      await h.run('SET', 'big', '9223372036854775800');
      assert.equal(await h.resp('INCRBY', 'big', 7), ':9223372036854775807\r\n');
      assert.equal(await h.resp('INCR', 'big'), '-ERR increment or decrement would overflow\r\n');
      assert.equal(await h.resp('GET', 'big'), '$19\r\n9223372036854775807\r\n');
      assert.equal(await h.resp('DECRBY', 'big', '9223372036854775807'), ':0\r\n');
    });

    it('a refused increment writes nothing and keeps the value', async () => {
      await h.run('SET', 's', 'text', 'EX', 100);
      assert.equal(await h.resp('INCR', 's'), '-ERR value is not an integer or out of range\r\n');
      assert.equal(await h.resp('INCRBYFLOAT', 's', 1), '-ERR value is not a valid float\r\n');
      assert.equal(await h.resp('GET', 's'), '$4\r\ntext\r\n');
      assert.equal(await h.resp('TTL', 's'), ':100\r\n');
      assert.equal(await h.resp('INCRBYFLOAT', 'none', 'inf'), '-ERR increment would produce NaN or Infinity\r\n');
      assert.equal(await h.resp('EXISTS', 'none'), ':0\r\n');
    });

    it('a large (compressed, decoding off the loop) value is refused as Redis refuses it', async () => {
      const big = Buffer.alloc(200_000, 'a');
      await h.run('SET', 'blob', big, 'EX', 50);
      assert.equal(await h.resp('INCR', 'blob'), '-ERR value is not an integer or out of range\r\n');
      assert.equal(await h.resp('INCRBYFLOAT', 'blob', 1), '-ERR value is not a valid float\r\n');
      assert.deepEqual(await h.run('GET', 'blob'), big);
      assert.equal(await h.resp('TTL', 'blob'), ':50\r\n');
    });

    it('HINCRBY and HINCRBYFLOAT keep the field\'s TTL', async () => {
      await h.run('HSETEX', 'ns', 'PX', 8000, 'FIELDS', 1, 'n', '10');
      assert.equal(await h.resp('HINCRBY', 'ns', 'n', 5), ':15\r\n');
      assert.equal(await h.resp('HINCRBYFLOAT', 'ns', 'n', '0.25'), '$5\r\n15.25\r\n');
      assert.equal(await h.resp('HPTTL', 'ns', 'FIELDS', 1, 'n'), '*1\r\n:8000\r\n');
      assert.equal(await h.resp('HINCRBY', 'ns', 'n', 1), '-ERR hash value is not an integer\r\n');
      assert.equal(await h.resp('HGET', 'ns', 'n'), '$5\r\n15.25\r\n');
      assert.equal(await h.resp('HINCRBY', 'ns', 'm', -3), ':-3\r\n');
      assert.equal(await h.resp('HPTTL', 'ns', 'FIELDS', 1, 'm'), '*1\r\n:-1\r\n');
    });

    it('SETBIT grows the blob with zeros and keeps the TTL; an unchanged bit writes nothing', async () => {
      await h.run('SET', 'bm', 'a', 'PX', 7000);
      assert.equal(await h.resp('SETBIT', 'bm', 23, 1), ':0\r\n');
      assert.deepEqual(await h.run('GET', 'bm'), Buffer.from([0x61, 0x00, 0x01]));
      assert.equal(await h.resp('PTTL', 'bm'), ':7000\r\n');
      assert.equal(await h.resp('SETBIT', 'bm', 23, 1), ':1\r\n');
      assert.equal(await h.resp('GETBIT', 'bm', 23), ':1\r\n');
      assert.equal(await h.resp('BITCOUNT', 'bm'), ':4\r\n');
      assert.equal(await h.resp('BITPOS', 'bm', 1, 1), ':23\r\n');
      assert.equal(await h.resp('SETBIT', 'new', 0, 1), ':0\r\n');
      assert.equal(await h.resp('TTL', 'new'), ':-1\r\n');
    });

    it('bitmaps read large values that decode off the event loop', async () => {
      const big = Buffer.alloc(100_000, 0xff);
      big[99_999] = 0x7f;
      await h.run('SET', 'bigbm', big, 'EX', 60);
      assert.equal(await h.resp('BITCOUNT', 'bigbm'), ':799999\r\n');
      assert.equal(await h.resp('BITPOS', 'bigbm', 0), ':799992\r\n');
      assert.equal(await h.resp('GETBIT', 'bigbm', 799992), ':0\r\n');
      assert.equal(await h.resp('SETBIT', 'bigbm', 799992, 1), ':0\r\n');
      assert.equal(await h.resp('BITPOS', 'bigbm', 0), ':800000\r\n');
      assert.equal(await h.resp('TTL', 'bigbm'), ':60\r\n');
    });

    it('COPY carries the TTL and the bytes of large values; GETSET clears the TTL', async () => {
      const big = Buffer.alloc(150_000, 'z');
      await h.run('SET', 'src', big, 'PX', 9000);
      assert.equal(await h.resp('COPY', 'src', 'dst'), ':1\r\n');
      assert.deepEqual(await h.run('GET', 'dst'), big);
      assert.equal(await h.resp('PTTL', 'dst'), ':9000\r\n');
      assert.equal(await h.resp('COPY', 'src', 'dst'), ':0\r\n');
      await h.run('SET', 'src', 'small');
      assert.equal(await h.resp('COPY', 'src', 'dst', 'REPLACE'), ':1\r\n');
      assert.equal(await h.resp('GET', 'dst'), '$5\r\nsmall\r\n');
      assert.equal(await h.resp('PTTL', 'dst'), ':-1\r\n');
      // A name that is only a namespace is not copied (as RENAME): fields stay where they are.
      await h.run('HSET', 'onlyns', 'f', 'v');
      assert.equal(await h.resp('COPY', 'onlyns', 'x'), ':0\r\n');
      await h.run('SET', 'g', 'old', 'EX', 100);
      assert.deepEqual(await h.run('GETSET', 'g', 'new'), Buffer.from('old'));
      assert.equal(await h.resp('TTL', 'g'), ':-1\r\n');
      assert.deepEqual(await h.run('GETSET', 'src', big), Buffer.from('small'));
      assert.deepEqual(await h.run('GETSET', 'src', 'x'), big);
    });

    it('LCS refuses tables beyond its cell limit, and reads large values', async () => {
      await h.run('SET', 'l1', Buffer.alloc(2047, 'a'));
      await h.run('SET', 'l2', Buffer.alloc(2047, 'a'));
      assert.equal(await h.resp('LCS', 'l1', 'l2', 'LEN'), ':2047\r\n');
      await h.run('SET', 'l3', Buffer.alloc(2048, 'a'));
      assert.match(await h.resp('LCS', 'l1', 'l3'), /^-ERR LCS input too large: \(len1\+1\)\*\(len2\+1\) exceeds 4194304/);
      // One short side: a long value (decoding off the loop when compressed) is fine.
      await h.run('SET', 'long', Buffer.alloc(100_000, 'b'));
      await h.run('SET', 'short', 'xbx');
      assert.equal(await h.resp('LCS', 'long', 'short'), '$1\r\nb\r\n');
    });

    it('HGETDEL and HGETEX answer the values read before their change', async () => {
      const big = Buffer.alloc(120_000, 'q');
      await h.run('HSET', 'gd', 'a', big, 'b', '2');
      assert.deepEqual(await h.run('HGETDEL', 'gd', 'FIELDS', 3, 'a', 'b', 'a'), [big, Buffer.from('2'), null]);
      assert.equal(await h.resp('HLEN', 'gd'), ':0\r\n');
      await h.run('HSET', 'ge', 'a', big, 'b', '2');
      assert.deepEqual(await h.run('HGETEX', 'ge', 'PX', 3000, 'FIELDS', 2, 'a', 'zz'), [big, null]);
      assert.equal(await h.resp('HPTTL', 'ge', 'FIELDS', 2, 'a', 'b'), '*2\r\n:3000\r\n:-1\r\n');
      assert.deepEqual(await h.run('HGETEX', 'ge', 'PERSIST', 'FIELDS', 1, 'a'), [big]);
      assert.equal(await h.resp('HPTTL', 'ge', 'FIELDS', 1, 'a'), '*1\r\n:-1\r\n');
      assert.deepEqual(await h.run('HGETEX', 'ge', 'PXAT', h.now, 'FIELDS', 1, 'b'), [Buffer.from('2')]);
      assert.equal(await h.resp('HEXISTS', 'ge', 'b'), ':0\r\n');
      await h.run('HGETEX', 'ge', 'EX', 1, 'FIELDS', 1, 'a');
      h.now += 1000;
      assert.equal(await h.resp('HGET', 'ge', 'a'), '$-1\r\n');
    });

    it('expiry times beyond 2^53 ms are accepted and kept at 2^53-1 ms; far past ones delete', async () => {
      await h.run('SET', 'k', 'v');
      assert.equal(await h.resp('PEXPIREAT', 'k', '9223372036854775807'), ':1\r\n');
      assert.equal(await h.resp('PEXPIRETIME', 'k'), `:${Number.MAX_SAFE_INTEGER}\r\n`);
      assert.equal(await h.resp('EXPIREAT', 'k', '9223372036854775'), ':1\r\n');
      assert.equal(await h.resp('PEXPIRETIME', 'k'), `:${Number.MAX_SAFE_INTEGER}\r\n`);
      assert.equal(await h.resp('SET', 'k', 'v', 'PXAT', '9223372036854775807'), '+OK\r\n');
      assert.equal(await h.resp('GET', 'k'), '$1\r\nv\r\n');
      assert.equal(await h.resp('PEXPIREAT', 'k', '-9223372036854775808'), ':1\r\n');
      assert.equal(await h.resp('EXISTS', 'k'), ':0\r\n');
    });
  });
}
