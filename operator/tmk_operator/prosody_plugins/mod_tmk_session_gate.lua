-- mod_tmk_session_gate: a consultation's room is open only while its TMK session is.
--
-- Loaded on the conference MUC component. Before anyone joins a room, the TMK API is asked whether the room's
-- session is open; the join is refused unless it says OPEN. Every room someone was let into is asked about again
-- every tmk_session_gate_poll_seconds, and destroyed (everyone in it removed, the conference over) once the API
-- says its session is no longer open: closed, expired or deleted, however that happened.
--
-- Without an answer (the API down or slow) a join is refused, and rooms under way go on: a consultation is never
-- cut by an outage, and a link whose session may have ended never gets in on the strength of silence.
--
-- Options (on the MUC component):
--   tmk_session_gate_url              the API's in-cluster base URL, e.g. "http://clinic-api.tmk.svc.cluster.local:8080"
--   tmk_session_gate_poll_seconds     how often rooms under way are checked (10)
--   tmk_session_gate_timeout_seconds  how long an answer is waited for (5)
--   tmk_session_gate_trusted_domains  hosts whose users are never asked about: jicofo's, Jibri's
-- The API's token is derived from JWT_APP_SECRET (the environment the prosody image already has), so no other
-- secret is handed out; the API derives the same one.

local async = require "util.async";
local hashes = require "util.hashes";
local http = require "net.http";
local jid = require "util.jid";
local json = require "util.json";
local new_id = require "util.id".medium;
local st = require "util.stanza";
local now = require "util.time".now;

local muc = module:depends("muc");

local api_url = module:get_option_string("tmk_session_gate_url");
local poll_seconds = module:get_option_number("tmk_session_gate_poll_seconds", 10);
local timeout_seconds = module:get_option_number("tmk_session_gate_timeout_seconds", 5);
local trusted_domains = module:get_option_set("tmk_session_gate_trusted_domains", {});
local secret = os.getenv("JWT_APP_SECRET");

-- The API answers at most this many rooms per request; rooms under way are asked about in batches of it.
local BATCH = 100;
local OPEN = "OPEN";

if not api_url or not secret or secret == "" then
	-- Refusing every join is the safe failure: nothing can be checked.
	module:log("error", "tmk_session_gate_url or JWT_APP_SECRET is not set: every join will be refused");
end
local base_url = api_url and api_url:gsub("/+$", "");
local rooms_url = base_url and (base_url .. "/internal/prosody/rooms");
local events_url = base_url and (base_url .. "/internal/prosody/events");
local token = secret and secret ~= "" and hashes.hmac_sha256(secret, "prosody-session-gate", true);

-- Rooms a participant was let into, by room JID: the ones whose session is asked about again.
local watched = {};

-- POSTs `payload` as JSON to `url`; calls done(answer) with the decoded answer of a 200, or done(nil, reason, code)
-- when there is none in time (code 0 without an HTTP answer).
local function post(url, payload, done)
	if not url or not token then
		return done(nil, "not configured", 0);
	end
	local finished = false;
	local function finish(answer, reason, code)
		if finished then return; end
		finished = true;
		done(answer, reason, code);
	end
	local request = http.request(url, {
		method = "POST";
		body = json.encode(payload);
		headers = { ["Content-Type"] = "application/json"; ["Authorization"] = "Bearer " .. token };
	}, function(body, code)
		if code ~= 200 then
			return finish(nil, code == 0 and tostring(body) or ("HTTP " .. tostring(code)), code);
		end
		local answer = json.decode(body);
		if type(answer) ~= "table" then
			return finish(nil, "an answer that is not JSON", code);
		end
		finish(answer);
	end);
	module:add_timer(timeout_seconds, function()
		if not finished then
			finish(nil, "no answer within " .. timeout_seconds .. " s", 0);
			if request then http.destroy_request(request); end
		end
	end);
end

-- Asks the API for the state of each named room's session; calls done(states) with name -> "OPEN" | "CLOSED" |
-- "EXPIRED" | "UNKNOWN", or done(nil, reason) when there is no usable answer in time.
local function ask(names, done)
	post(rooms_url, { rooms = names }, function(answer, reason)
		if answer and type(answer.rooms) ~= "table" then
			answer, reason = nil, "an answer without rooms";
		end
		done(answer and answer.rooms, reason);
	end);
end

local function refuse(event, kind, condition, text)
	event.origin.send(st.error_reply(event.stanza, kind, condition, text, event.room.jid));
	return true;
end

module:hook("muc-occupant-pre-join", function(event)
	local room, stanza = event.room, event.stanza;
	if trusted_domains:contains(jid.host(stanza.attr.from)) then
		return;
	end
	local name = jid.node(room.jid);
	local state, reason;
	if async.ready() then
		local wait, done = async.waiter();
		ask({ name }, function(states, why)
			state, reason = states and states[name], why;
			done();
		end);
		wait();
	else
		reason = "the join is not handled in an async context";
	end
	if state == OPEN then
		if muc.get_room_from_jid(room.jid) ~= room then
			-- The room ended while the API was asked; a new join makes a new room.
			return refuse(event, "wait", "resource-constraint", "The room was just closed; join again.");
		end
		watched[room.jid] = room;
		return;
	end
	if state == nil then
		module:log("warn", "join to %s refused: the TMK API gave no answer (%s)", room.jid, reason);
		return refuse(event, "wait", "service-unavailable", "The consultation service cannot be reached; try again shortly.");
	end
	module:log("info", "join to %s refused: its session is %s", room.jid, tostring(state));
	return refuse(event, "cancel", "not-allowed", "This consultation is not open.");
end, 20);

module:hook("muc-room-destroyed", function(event)
	watched[event.room.jid] = nil;
end);

-- Rooms under way whose session the API says is no longer open end here.
local function end_closed(batch)
	ask(batch.names, function(states, reason)
		if not states then
			module:log("warn", "could not check %d rooms under way (%s); they go on", #batch.names, reason);
			return;
		end
		for name, state in pairs(states) do
			local room = batch.rooms[name];
			if room and state ~= OPEN and watched[room.jid] == room then
				module:log("info", "ending %s: its session is %s", room.jid, tostring(state));
				room:destroy(nil, "This consultation has ended.");
			end
		end
	end);
end

-- Joins and leaves, reported to the API (issue 18): for each room, the reports it has not accepted yet, in order.
-- A report that fails stays queued and goes again on the next poll; the API takes repeats and any order.
local pending = {};
local sending = {};
-- The join of each occupant under way (by occupant JID): the id of this join and its affiliation.
local joins = {};

local function flush(name)
	local queue = pending[name];
	if not queue or sending[name] then return; end
	local batch = {};
	for i = 1, math.min(#queue, BATCH) do batch[i] = queue[i]; end
	sending[name] = true;
	post(events_url, { room = name; events = batch }, function(answer, reason, code)
		sending[name] = nil;
		if not answer and code ~= 404 and code ~= 422 then
			module:log("warn", "%d reports of %s not taken yet (%s); they go again", #queue, name, reason);
			return;
		end
		if not answer then
			-- Never to be taken (the session is gone, or the API refuses the shape): not sent again.
			module:log("warn", "%d reports of %s dropped: %s", #batch, name, reason);
		end
		for _ = 1, #batch do table.remove(queue, 1); end
		if #queue == 0 then pending[name] = nil; else flush(name); end
	end);
end

local function report(room, kind, join)
	local name = jid.node(room.jid);
	local queue = pending[name] or {};
	pending[name] = queue;
	queue[#queue + 1] = { type = kind; occupant = join.id; affiliation = join.affiliation; at = now() };
	flush(name);
end

module:hook("muc-occupant-joined", function(event)
	local room, occupant = event.room, event.occupant;
	if not watched[room.jid] or trusted_domains:contains(jid.host(occupant.bare_jid)) then
		return;
	end
	-- The affiliation token_affiliation gave (owner for the doctor's token, member for the patient's); no name.
	local join = { id = new_id(); affiliation = room:get_affiliation(occupant.bare_jid) or "none" };
	joins[occupant.nick] = join;
	report(room, "joined", join);
end);

module:hook("muc-occupant-left", function(event)
	local join = joins[event.occupant.nick];
	if not join then return; end
	joins[event.occupant.nick] = nil;
	report(event.room, "left", join);
end);

module:add_timer(poll_seconds, function()
	for name in pairs(pending) do
		flush(name);
	end
	local batch = { names = {}, rooms = {} };
	for room_jid, room in pairs(watched) do
		local name = jid.node(room_jid);
		batch.names[#batch.names + 1], batch.rooms[name] = name, room;
		if #batch.names == BATCH then
			end_closed(batch);
			batch = { names = {}, rooms = {} };
		end
	end
	if #batch.names > 0 then
		end_closed(batch);
	end
	return poll_seconds;
end);
