-- Feed ids start at 2: a device's first cursor "1" means "nothing yet" and must lie below every real signal
-- (the feed's very first row, id 1, was never delivered to a device that asked before it existed). On a
-- table that already holds rows this changes nothing (the counter is past 2 already).
ALTER TABLE device_updates AUTO_INCREMENT = 2;
