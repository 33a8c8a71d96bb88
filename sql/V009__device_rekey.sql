-- An existing device registers again only with proof tied to it. A device grant can carry that proof: the
-- approving user names the device (device_verify with device_public_id), and the grant's registration code may
-- then register that device again (with a new key). Without it a code only creates new devices.
ALTER TABLE device_auth_codes ADD COLUMN approved_device_public_id CHAR(36) NULL;
