-- The demo rows of the business data, the same for SQLite and PostgreSQL. Appointment slots are
-- generated in Python, relative to the day the data is seeded (records.demo_slot_rows).

INSERT INTO products (id, sku, name, description, price_cents, stock) VALUES
    (1, 'SH-ARG-250', 'Argan Oil Shampoo', 'Gentle shampoo with argan oil for dry and damaged hair, 250 ml', 1450, 34),
    (2, 'CO-ARG-250', 'Argan Oil Conditioner', 'Light conditioner with argan oil, detangles and adds shine, 250 ml', 1550, 21),
    (3, 'SH-TEA-300', 'Tea Tree Shampoo', 'Refreshing tea tree shampoo for oily scalp and dandruff, 300 ml', 1200, 0),
    (4, 'MA-KER-200', 'Keratin Hair Mask', 'Weekly keratin repair mask for curly and frizzy hair, 200 ml', 2400, 12),
    (5, 'OI-COC-100', 'Coconut Hair Oil', 'Cold-pressed coconut oil for scalp massage and split ends, 100 ml', 900, 50),
    (6, 'SE-HEA-150', 'Heat Protection Spray', 'Protects hair from straighteners and blow dryers up to 230 C, 150 ml', 1300, 8),
    (7, 'BR-DET-001', 'Detangling Brush', 'Flexible bristle brush for wet and dry hair, suitable for children', 1100, 15),
    (8, 'NA-POL-RED', 'Nail Polish Ruby Red', 'Long-lasting gel-effect nail polish, ruby red, 12 ml', 650, 40),
    (9, 'SK-MOI-050', 'Shea Butter Moisturiser', 'Rich face and body moisturiser with shea butter for dry skin, 50 ml', 1800, 17),
    (10, 'GI-VOU-050', 'Gift Voucher 50', 'Gift voucher worth 50 for any salon service or product', 5000, 999);


-- Each order belongs to one phone number: +256703722777 is the spec's example contact, the
-- +2567000000NN numbers are the harness's first simulated contacts.
INSERT INTO orders (id, customer_name, phone, status, eta, placed_on) VALUES
    (1041, 'Grace Namubiru', '+256700000000', 'delivered', NULL, '2026-10-28'),
    (1042, 'Amos Okello', '+256703722777', 'shipped', '2 business days', '2026-11-02'),
    (1043, 'Sarah Atim', '+256700000001', 'processing', '4 business days', '2026-11-05'),
    (1044, 'Peter Mugisha', '+256700000002', 'cancelled', NULL, '2026-11-06'),
    (1045, 'Joan Nakato', '+256700000003', 'shipped', 'tomorrow', '2026-11-07'),
    (1046, 'Brian Ssempala', '+256700000004', 'processing', '5 business days', '2026-11-08');

INSERT INTO order_items (order_id, product_id, quantity) VALUES
    (1041, 1, 2), (1041, 2, 1),
    (1042, 4, 1), (1042, 5, 2),
    (1043, 9, 1),
    (1044, 8, 3),
    (1045, 6, 1), (1045, 7, 1),
    (1046, 10, 1);

INSERT INTO faq (id, question, answer) VALUES
    (1, 'What are your opening hours?', 'We are open Monday to Saturday from 9:00 to 18:00. We are closed on Sundays and public holidays.'),
    (2, 'Where is the salon located?', 'We are at Plot 12 Kampala Road, first floor, next to the post office.'),
    (3, 'How much does delivery cost and how long does shipping take?', 'Delivery within Kampala costs 5 and takes 1-2 business days; elsewhere it takes 3-5 business days. Orders above 60 ship free.'),
    (4, 'Can I return a product or get a refund?', 'Unopened products can be returned within 14 days for a full refund. Bring the receipt or your order number.'),
    (5, 'Which payment methods do you accept?', 'We accept cash, cards and mobile money (MTN and Airtel).'),
    (6, 'How do I cancel or reschedule an appointment?', 'Reply with your appointment time and we will move it. Please cancel at least 24 hours in advance.'),
    (7, 'Which services do you offer?', 'Haircuts, braiding, colouring, keratin treatments, manicures and pedicures.'),
    (8, 'Do you sell gift vouchers?', 'Yes, gift vouchers worth 50 are valid for one year on any service or product.');
