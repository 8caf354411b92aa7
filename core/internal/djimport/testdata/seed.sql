-- A dj-whisperer 0.2.x database in use, for the importer's tests: every
-- countdown kind, a callback a Whisperer plugin registers ("fast", from
-- core/plugin/testdata/fastcb.wasm) and one none does, headers, basic
-- auth, secrets, inactive hooks and users, credentials in a URL, and
-- events delivered, given up and still being retried.

INSERT INTO django_content_type (id, app_label, model) VALUES (1, 'shop', 'order');

INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined) VALUES
 (1, '!', true,  'alice', '', '', 'alice@example.com', true,  true,  '2020-01-01 10:00:00+00'),
 (2, '!', false, 'bob',   '', '', 'bob@example.com',   false, true,  '2020-01-02 10:00:00+00'),
 (3, '!', false, 'carol', '', '', 'carol@example.com', true,  true,  '2020-01-03 10:00:00+00'),
 (4, '!', false, 'dave',  '', '', 'dave@example.com',  false, false, '2020-01-04 10:00:00+00'),
 (5, '!', false, 'erin',  '', '', 'erin@example.com',  false, true,  '2020-01-05 10:00:00+00');
SELECT setval('auth_user_id_seq', 5);

INSERT INTO authtoken_token (key, created, user_id) VALUES
 ('a11ce0000000000000000000000000000000a11c', '2020-02-01 10:00:00+00', 1),
 ('b0b0000000000000000000000000000000000b0b', '2020-02-02 10:00:00+00', 2),
 ('ca401000000000000000000000000000000ca401', '2020-02-03 10:00:00+00', 3),
 ('da4e0000000000000000000000000000000da4e0', '2020-02-04 10:00:00+00', 4),
 ('e4140000000000000000000000000000000e4140', '2020-02-05 10:00:00+00', 5);

INSERT INTO whisperer_webhook (id, created_date, modified_date, target_url, is_active, secret_key, event_type, callback,
    retry_countdown_config, additional_headers, config, user_id) VALUES
 (1, '2021-01-01 09:00:00+00', '2021-01-02 09:00:00+00', 'https://hooks.example.com/orders', true, 'bob-secret', 'order-created', NULL,
  '{"choice": "fixed", "kwargs": {"seconds": 60}}', '{"X-Api-Key": "k-123", "X-Tenant": "t1"}',
  '{"auth": {"auth_type": "basic", "username": "shop", "password": "pw-1"}}', 2),
 (2, '2021-01-03 09:00:00+00', '2021-01-03 09:00:00+00', 'https://hooks.example.com/packages', true, 'bob-secret-2', 'package-created', 'fast',
  '{"choice": "linear", "kwargs": {"base": 60, "limit": 600}}', '{}', '{}', 2),
 (3, '2021-01-04 09:00:00+00', '2021-01-04 09:00:00+00', 'https://hooks.example.com/cb', true, NULL, 'order-created', 'myapp.hooks.on_delivery',
  '{"choice": "exponential", "kwargs": {"base": 2, "limit": 3600}}', '{}', '{}', 2),
 (4, '2021-01-05 09:00:00+00', '2021-01-06 09:00:00+00', 'https://admin.example.com/all', false, '', 'order-created', NULL,
  '{"choice": "random", "kwargs": {"min_value": 1, "max_value": 10}}', '{}', '{}', 1),
 (5, '2021-01-07 09:00:00+00', '2021-01-07 09:00:00+00', 'https://carol.example.com/huge', true, 'c', 'order-created', NULL,
  '{"choice": "random", "kwargs": {"min_value": 0, "max_value": 9223372036854775807}}', '{}', '{}', 3),
 (6, '2021-01-08 09:00:00+00', '2021-01-08 09:00:00+00', 'https://carol.example.com/none', true, 'c', 'package-created', '',
  '{}', '{}', '{}', 3),
 (7, '2021-01-09 09:00:00+00', '2021-01-09 09:00:00+00', 'https://dave:s3cret@dave.example.com/in', true, 'd', 'order-created', NULL,
  '{"choice": "fixed", "kwargs": {"seconds": 5}}', '{}', '{}', 4);
SELECT setval('whisperer_webhook_id_seq', 7);

INSERT INTO whisperer_webhookevent (id, created_date, modified_date, uuid, request_payload, response_content, response_http_status,
    delivered, request_datetimes, retry_count, object_id, content_type_id, webhook_id) VALUES
 -- delivered at the second attempt
 (1, '2022-03-01 12:00:00+00', '2022-03-01 12:01:00+00', '11111111-1111-4111-8111-111111111111',
  '{"event": {"type": "order-created", "uuid": "11111111111141118111111111111111"}, "payload": {"id": 1, "total": "9.90"}}',
  'ok', 200, true, ARRAY['2022-03-01 12:01:00+00', '2022-03-01 12:00:00+00']::timestamptz[], 2, 1, 1, 1),
 -- dj-whisperer gave up: 18 attempts
 (2, '2022-03-02 12:00:00+00', '2022-03-03 12:00:00+00', '22222222-2222-4222-8222-222222222222',
  '{"event": {"type": "order-created", "uuid": "22222222222242228222222222222222"}, "payload": {"id": 2}}',
  'boom', 500, false, ARRAY['2022-03-03 12:00:00+00', '2022-03-02 12:00:00+00']::timestamptz[], 18, NULL, NULL, 1),
 -- still being retried by Celery
 (3, '2022-03-04 12:00:00+00', '2022-03-04 12:05:00+00', '33333333-3333-4333-8333-333333333333',
  '{"event": {"type": "package-created", "uuid": "33333333333343338333333333333333"}, "payload": {"package": "p-3"}}',
  'unavailable', 503, false, ARRAY['2022-03-04 12:05:00+00', '2022-03-04 12:02:00+00', '2022-03-04 12:00:00+00']::timestamptz[], 3, NULL, NULL, 2),
 -- one failed attempt, retry_count never set (NULL)
 (4, '2022-03-05 12:00:00+00', '2022-03-05 12:00:00+00', '44444444-4444-4444-8444-444444444444',
  '{"event": {"type": "order-created", "uuid": "44444444444444448444444444444444"}, "payload": {"id": 4}}',
  '', 500, false, ARRAY['2022-03-05 12:00:00+00']::timestamptz[], NULL, NULL, NULL, 1),
 -- delivered to the hook whose callback no plugin registers
 (5, '2022-03-06 12:00:00+00', '2022-03-06 12:00:00+00', '55555555-5555-4555-8555-555555555555',
  '{"event": {"type": "order-created", "uuid": "55555555555545558555555555555555"}, "payload": {"id": 5}}',
  'thanks', 202, true, ARRAY['2022-03-06 12:00:00+00']::timestamptz[], 1, NULL, NULL, 3);
SELECT setval('whisperer_webhookevent_id_seq', 5);
