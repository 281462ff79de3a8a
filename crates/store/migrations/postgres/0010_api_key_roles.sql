-- A tenant API key acts as a role: staff (kitchen, orders) or operator (menu, theme,
-- agent, keys). Keys issued before roles existed kept full tenant access, so they
-- become operator keys.
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'operator';
