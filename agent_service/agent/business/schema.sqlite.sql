-- Schema and demo data of the embedded business database: a small hair and beauty salon that
-- sells products and takes appointments. Appointment slots are generated in Python, relative
-- to the day the file is created, so a fresh database always has upcoming free slots.

CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    stock INTEGER NOT NULL CHECK (stock >= 0)
);

CREATE VIRTUAL TABLE products_fts USING fts5(
    name, description, content='products', content_rowid='id', tokenize='porter unicode61'
);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_name TEXT NOT NULL,
    phone TEXT, -- E.164 of the contact who placed it: the only one who may see it
    status TEXT NOT NULL CHECK (status IN ('processing', 'shipped', 'delivered', 'cancelled')),
    eta TEXT,
    placed_on TEXT NOT NULL
);

CREATE TABLE order_items (
    order_id INTEGER NOT NULL REFERENCES orders (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);

CREATE TABLE appointment_slots (
    id INTEGER PRIMARY KEY,
    date TEXT NOT NULL,
    time TEXT NOT NULL,
    service TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('free', 'booked')),
    customer_name TEXT,
    phone TEXT, -- E.164 of the contact it is booked for
    request_id TEXT, -- the request that booked it: processing it again books nothing new
    UNIQUE (date, time, service)
);

CREATE UNIQUE INDEX appointment_slots_request ON appointment_slots (request_id);

CREATE TABLE faq (
    id INTEGER PRIMARY KEY,
    question TEXT NOT NULL,
    answer TEXT NOT NULL
);

CREATE VIRTUAL TABLE faq_fts USING fts5(
    question, answer, content='faq', content_rowid='id', tokenize='porter unicode61'
);


-- After the demo rows are in (sqlite_store seeds them), the full-text indexes are built:
-- INSERT INTO products_fts (products_fts) VALUES ('rebuild'); and the same for faq_fts.
