<?php
// Classes the generated payloads use; shared by gen-payloads.php and bench-php.php
// (unserialize() needs them to rebuild the same objects).

class PlainObj { public $a = 1; protected $b = 'two'; private $c = [3]; public $d; }
class ParentObj { private $secret = 'parent'; protected $shared = 'p'; }
class ChildObj extends ParentObj { private $secret = 'child'; public $x = null; }
class WithSerialize {
    public $items = [];
    public $id = 0;
    public function __serialize(): array { return ['id' => $this->id, 0 => $this->items, 'when' => 1.25]; }
    public function __unserialize(array $d): void { $this->id = $d['id']; $this->items = $d[0]; }
}
class WithSleep { public $keep = 'k'; public $drop = 'd'; protected $prot = 'p'; public function __sleep() { return ['keep', 'prot']; } }
class Legacy implements Serializable {
    public $data;
    public function __construct($d = null) { $this->data = $d; }
    public function serialize() { return serialize($this->data); }
    public function unserialize($s) { $this->data = unserialize($s); }
}
class RawLegacy implements Serializable {
    public $text = 'plain|text;with"quotes';
    public function serialize() { return $this->text; }
    public function unserialize($s) { $this->text = $s; }
}
enum Suit { case Hearts; case Spades; }
enum Status: string { case Active = 'active'; case Banned = 'banned'; }

// A realistic-looking application model for the golden sessions.
class User {
    public int $id; public string $email; protected array $roles; private ?string $passwordHash;
    public ?\DateTimeImmutable $lastLogin = null; public Status $status = Status::Active;
    public function __construct($id, $email, $roles) { $this->id = $id; $this->email = $email; $this->roles = $roles; $this->passwordHash = '$2y$13$' . bin2hex(random_bytes_seeded(22)); }
}
class CartItem { public function __construct(public string $sku, public string $name, public int $qty, public float $price, public array $options = []) {} }
class Cart {
    private array $items = []; protected string $currency = 'EUR'; public ?string $coupon = null;
    public function add(CartItem $i) { $this->items[$i->sku] = $i; }
    public function __serialize(): array { return ['items' => $this->items, 'currency' => $this->currency, 'coupon' => $this->coupon]; }
    public function __unserialize(array $d): void { $this->items = $d['items']; $this->currency = $d['currency']; $this->coupon = $d['coupon']; }
}

