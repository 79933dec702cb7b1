<?php

declare(strict_types=1);

namespace Phpsessd\Tests;

use Phpsessd\Exception\ProtocolException;
use Phpsessd\Resp;
use Phpsessd\RespError;
use PHPUnit\Framework\TestCase;

final class RespTest extends TestCase
{
    public function testEncodesArraysOfBulkStrings(): void
    {
        $this->assertSame("*3\r\n\$4\r\nREAD\r\n\$3\r\nabc\r\n\$2\r\n42\r\n", Resp::encode(['READ', 'abc', 42]));
        $this->assertSame("*1\r\n\$0\r\n\r\n", Resp::encode(['']));
        $this->assertSame("*0\r\n", Resp::encode([]));
    }

    public function testEncodingIsBinarySafe(): void
    {
        $binary = "a\r\n\0\xff|b";
        $frame = Resp::encode(['WRITE', $binary]);
        $this->assertSame("*2\r\n\$5\r\nWRITE\r\n\$7\r\n" . $binary . "\r\n", $frame);
        $this->assertSame([['WRITE', $binary], strlen($frame)], Resp::parse($frame));
    }

    public function testRefusesNonScalarArguments(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        Resp::encode(['SET', ['x']]);
    }

    /**
     * @return array<string, array{0: string, 1: mixed}>
     */
    public function replies(): array
    {
        return [
            'simple string' => ["+OK\r\n", 'OK'],
            'integer' => [":42\r\n", 42],
            'negative integer' => [":-7\r\n", -7],
            'bulk' => ["\$5\r\nhello\r\n", 'hello'],
            'empty bulk' => ["\$0\r\n\r\n", ''],
            'null bulk' => ["\$-1\r\n", null],
            'null array' => ["*-1\r\n", null],
            'empty array' => ["*0\r\n", []],
            'read reply' => ["*3\r\n\$6\r\na|i:1;\r\n:7\r\n+optimistic\r\n", ['a|i:1;', 7, 'optimistic']],
            'nested' => ["*2\r\n*2\r\n:1\r\n:2\r\n\$1\r\nx\r\n", [[1, 2], 'x']],
        ];
    }

    /**
     * @dataProvider replies
     * @param mixed $expected
     */
    public function testParsesReplies(string $wire, $expected): void
    {
        $this->assertSame([$expected, strlen($wire)], Resp::parse($wire));
    }

    public function testParsesErrorsAsValues(): void
    {
        [$error, $end] = Resp::parse("-CONFLICT abc cart/items\r\n");
        $this->assertInstanceOf(RespError::class, $error);
        $this->assertSame('CONFLICT', $error->getCode());
        $this->assertSame('abc cart/items', $error->getMessage());
        $this->assertSame(26, $end);

        [$bare] = Resp::parse("-NOAUTH\r\n");
        $this->assertSame('NOAUTH', $bare->getCode());
        $this->assertSame('', $bare->getMessage());

        [$list] = Resp::parse("*2\r\n-ERR x\r\n:1\r\n");
        $this->assertInstanceOf(RespError::class, $list[0]);
    }

    public function testEveryTruncationAsksForMore(): void
    {
        $wire = "*3\r\n\$6\r\na|i:1;\r\n:7\r\n+optimistic\r\n";
        for ($cut = 0; $cut < strlen($wire); $cut++) {
            $this->assertNull(Resp::parse(substr($wire, 0, $cut)), 'cut at ' . $cut);
        }
    }

    public function testParsesFromAnOffset(): void
    {
        $wire = "+OK\r\n:5\r\n";
        [$first, $next] = Resp::parse($wire);
        $this->assertSame('OK', $first);
        $this->assertSame([5, strlen($wire)], Resp::parse($wire, $next));
    }

    /**
     * @return array<string, array{0: string}>
     */
    public function malformed(): array
    {
        return [
            'unknown type' => ["!oops\r\n"],
            'inline text' => ["hello\r\n"],
            'bad integer' => [":12a\r\n"],
            'bad bulk length' => ["\$x\r\n"],
            'negative bulk length' => ["\$-2\r\n"],
            'bulk without CRLF' => ["\$2\r\nabXY"],
            'empty line' => ["\r\n"],
            'integer overflow' => [":99999999999999999999\r\n"],
            'deep nesting' => [str_repeat("*1\r\n", 40) . ":1\r\n"],
        ];
    }

    /**
     * @dataProvider malformed
     */
    public function testRejectsMalformedReplies(string $wire): void
    {
        $this->expectException(ProtocolException::class);
        Resp::parse($wire);
    }
}
