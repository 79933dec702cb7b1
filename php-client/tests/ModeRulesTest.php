<?php

declare(strict_types=1);

namespace Phpsessd\Tests;

use Phpsessd\ModeRules;
use PHPUnit\Framework\TestCase;

final class ModeRulesTest extends TestCase
{
    public function testFirstMatchWins(): void
    {
        $rules = ModeRules::parse('POST /checkout/* locked; GET /api/* readonly; * optimistic');
        $this->assertSame('locked', $rules->match('POST', '/checkout/pay'));
        $this->assertSame('locked', $rules->match('post', '/checkout/a/b/c'));
        $this->assertSame('optimistic', $rules->match('GET', '/checkout/pay'));
        $this->assertSame('readonly', $rules->match('GET', '/api/v1/items'));
        $this->assertSame('optimistic', $rules->match('PUT', '/anything'));
    }

    public function testNoMatchLeavesTheChoiceToTheDaemon(): void
    {
        $rules = ModeRules::parse("GET /a locked\n");
        $this->assertNull($rules->match('GET', '/b'));
        $this->assertNull($rules->match('POST', '/a'));
        $this->assertTrue(ModeRules::parse(' ; ')->isEmpty());
    }

    public function testGlobIsLiteralExceptStar(): void
    {
        $rules = ModeRules::parse('* /a.b/(x)? locked');
        $this->assertSame('locked', $rules->match('GET', '/a.b/(x)?'));
        $this->assertNull($rules->match('GET', '/aXb/(x)?'));
    }

    public function testRejectsBrokenRules(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->expectExceptionMessage('GET /x locked extra');
        ModeRules::parse('GET /x locked extra');
    }

    public function testRejectsUnknownModes(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        ModeRules::parse('GET /x exclusive');
    }
}
