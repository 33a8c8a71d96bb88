-- certctrl: older binaries keep working
-- The newest feed id of each device, written with every signal. On Galera the devices row lock that orders a
-- device's signals is local to a node: this write puts the row in the write set, so two signals for one
-- device written on different nodes at once conflict (the later is certified as a deadlock and runs again),
-- and a device's feed ids stay in commit order, which the cursor relies on. Binaries before it do not write
-- it (the column has a default) and keep working beside newer ones during an upgrade.
ALTER TABLE devices ADD COLUMN feed_tip BIGINT UNSIGNED NOT NULL DEFAULT 0;
