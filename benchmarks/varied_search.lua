-- nugat benchmarks: wrk -s script for benchmarks/scale.py
-- every request a different page: nothing is reused
local words = {"json","http","logging","sql","cache","queue","auth","crypto","image","pdf","xml","yaml","grpc","redis","kafka","test"}
counter = 0
request = function()
  counter = counter + 1
  local w = words[(counter % 16) + 1]
  return wrk.format("GET", "/v3/search?q=" .. w .. "&skip=" .. ((counter * 7919) % 2000) .. "&take=20")
end
