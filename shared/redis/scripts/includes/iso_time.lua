-- iso_ms(ms): epoch milliseconds as ISO 8601 UTC with milliseconds
-- ("2026-03-03T14:00:00.000Z"), the one time format of every surface of the
-- API and the live feed (docs/api.md "Time"). Redis' Lua has no date library,
-- so the calendar date is computed from the day number (the proleptic
-- Gregorian civil_from_days algorithm); Lua numbers are doubles, exact for
-- every epoch millisecond of the next 280,000 years.
local function iso_ms(ms)
  local days = math.floor(ms / 86400000)
  local rest = ms - days * 86400000
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  local hour = math.floor(rest / 3600000)
  local minute = math.floor((rest % 3600000) / 60000)
  local second = math.floor((rest % 60000) / 1000)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', year, month, day, hour, minute, second,
    rest % 1000)
end
