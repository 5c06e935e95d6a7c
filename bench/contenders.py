"""Ours and the peers, each as one object with `turn(session, message) -> session` on the same moto.

Every contender, every turn: load what it keeps (config and session), rebuild a langchain `create_agent`
agent with the same scripted model, system prompt and `calculator` tool, run one turn, save. What
differs is what each keeps and how:

- ours: `openbrain.conversation.chat.chat()`, the real turn (the config snapshot and compressed JSON memory in one
  item; one read, one conditional write), with the scripted model passed in as `chat(model=...)`;
- LangGraph's `create_agent` with `langgraph-checkpoint-aws`'s `DynamoDBSaver` (checkpoints and writes
  as items, payloads over 350 KB offloaded to S3), with its default durability and with `durability="exit"`;
- langchain's `RunnableWithMessageHistory` with `langchain_community`'s `DynamoDBChatMessageHistory`
  (one item per session holding the message list), built per turn as its documentation shows;
- a reimplementation of the original OpenBra.in: the session item holds the agent config and a pickled
  `ConversationBufferMemory`, which (as with langchain's AgentExecutor) keeps each turn's input and final
  output, not its tool calls. Pickle is used here only, to measure that design; `openbrain/` never does.

The peers get their config from code (no read), which only favours them. Stored bytes are read from
moto's tables directly (no AWS call, nothing metered) and sized by the documented rules (`itemsize`).
"""

from __future__ import annotations

import functools
import json
import pickle
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import count
from typing import Any, Protocol

from bench.itemsize import item_size, moto_item_size, value_size
from bench.script import SYSTEM_PROMPT, ScriptedChatModel, peer_tools, user_message
from openbrain.core.ids import new_id

REGION = "us-east-1"
TTL_SECONDS = 30 * 24 * 3600
CLIENT_ID = "bench"
PROFILE = "bench"


@dataclass
class Stored:
    dynamodb_bytes: int
    s3_bytes: int
    items: int
    largest_item: int

    @property
    def total(self) -> int:
        return self.dynamodb_bytes + self.s3_bytes


@dataclass
class Simulated:
    """The item a single-item peer would hold after `turn` turns, sized by the documented rules and by moto's."""

    turn: int
    documented: int
    stock: int
    item: Callable[[], dict[str, Any]]


def scripted_turns(model: ScriptedChatModel, first: int = 1) -> Iterator[list[Any]]:
    """Turn after turn of the fixed script from turn `first`, the messages an agent adds (the person's first):
    what a real turn produces, since the scripted model answers from the turn's own messages only."""
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage

    agent = create_agent(model, tools=peer_tools(), system_prompt=SYSTEM_PROMPT)
    for turn in count(first):
        yield list(agent.invoke({"messages": [HumanMessage(user_message(turn, model.reply_chars))]})["messages"])


class Contender(Protocol):
    name: str

    def turn(self, session: str | None, message: str) -> str: ...

    def stored(self, session: str) -> Stored: ...

    def close(self) -> None: ...


def _dynamodb() -> Any:
    import boto3

    return boto3.client("dynamodb", region_name=REGION)


def _create_table(name: str, hash_key: str, range_key: str | None = None) -> None:
    keys = [(hash_key, "HASH")] + ([(range_key, "RANGE")] if range_key else [])
    _dynamodb().create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": n, "KeyType": t} for n, t in keys],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n, _ in keys],
    )


def _moto_items(table: str) -> list[Any]:
    """The items of a moto table, straight from its backend (no request, so not metered)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return list(dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(table).all_items())


def _moto_objects(bucket: str) -> dict[str, int]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    keys = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_bucket(bucket).keys
    return {name: keys[name].size for name in keys}


def _stored(items: list[Any], s3_bytes: int = 0) -> Stored:
    sizes = [item_size(item.attrs) for item in items]
    return Stored(sum(sizes), s3_bytes, len(sizes), max(sizes, default=0))


def _drop_tables(*names: str) -> None:
    client = _dynamodb()
    for name in names:
        client.delete_table(TableName=name)


class Ours:
    """`openbrain.conversation.chat.chat()`, the entry point of the API, the CLIs and the tuner, with the scripted
    model."""

    name = "OpenBrain (ours)"

    def __init__(self, model: ScriptedChatModel) -> None:
        from openbrain.aws.backend import Backend, set_backend
        from openbrain.core.settings import Settings
        from openbrain.storage.orm.agent_config import AgentConfig

        self.model = model
        self.backend = Backend(Settings(backend="memory", memory_store=None)).start()
        self._previous = set_backend(self.backend)
        AgentConfig(CLIENT_ID, PROFILE, model="offline", tools=["calculator"], system_message=SYSTEM_PROMPT).save()

    def turn(self, session: str | None, message: str) -> str:
        from openbrain.conversation.chat import ChatMessage, chat

        request = ChatMessage(client_id=CLIENT_ID, agent_config=PROFILE, session_id=session, message=message)
        return chat(request, self.backend, model=self.model).session_id

    def stored(self, session: str) -> Stored:
        from openbrain.storage.orm.chat_session import ChatSession

        items = [i for i in _moto_items(ChatSession.Meta.table_name)
                 if i.hash_key.value == CLIENT_ID and i.range_key.value == session]
        return _stored(items)

    def snapshot(self, session: str) -> Any:
        """The stored session (a `ChatSession`), to replay from."""
        from openbrain.storage.orm.chat_session import ChatSession

        return ChatSession.get(CLIENT_ID, session)

    def replay(self, start: Any, last: int, record_at: set[int]) -> tuple[dict[int, int], int]:
        """Turns after `start` (a snapshot) up to `last`, through the chat turn's memory calls alone: each
        turn loads the stored records (`memory_codec.load`) and stores the turn's messages (the same
        scripted agent turn) with `memory.remember`, as `continue_session` does, without the agent runtime or
        moto. Returns the session item's size by the documented rules (the snapshot with that memory and
        turn count) at the turns in `record_at`, and the largest it was."""
        from openbrain.conversation import memory
        from openbrain.storage import memory_codec
        from openbrain.storage.orm.agent_config import AgentConfig

        session = start
        config = AgentConfig.from_snapshot(session.config_snapshot)
        first = int(session.turn_count) + 1
        sizes: dict[int, int] = {}
        largest = 0
        for turn, messages in zip(range(first, last + 1), scripted_turns(self.model, first), strict=False):
            memory.remember(session, memory_codec.load(session.memory), messages, config.memory)
            session.turn_count = turn
            size = item_size(session.serialize())
            largest = max(largest, size)
            if turn in record_at:
                sizes[turn] = size
        return sizes, largest

    def close(self) -> None:
        from openbrain.aws.backend import set_backend

        set_backend(self._previous)
        self.backend.close()


class LangGraphCheckpoints:
    """`create_agent(checkpointer=DynamoDBSaver(...))`, S3 offload on (its answer to the item limit)."""

    def __init__(self, model: ScriptedChatModel, durability: str | None = None) -> None:
        from langgraph_checkpoint_aws import DynamoDBSaver

        self.name = "LangGraph + DynamoDBSaver" + (f" (durability={durability})" if durability else "")
        self.model = model
        self.durability = durability  # None: LangGraph's default ("async"); the driver may switch it per turn
        suffix = durability or "default"
        self.table = f"bench-langgraph-{suffix}"
        self.bucket = f"bench-langgraph-{suffix}"
        _create_table(self.table, "PK", "SK")
        import boto3

        boto3.client("s3", region_name=REGION).create_bucket(Bucket=self.bucket)
        self.saver = DynamoDBSaver(table_name=self.table, region_name=REGION, ttl_seconds=TTL_SECONDS,
                                   s3_offload_config={"bucket_name": self.bucket})

    @functools.cached_property
    def agent(self) -> Any:
        """Compiled once and invoked per thread, as a warm process uses a checkpointed graph."""
        from langchain.agents import create_agent

        return create_agent(self.model, tools=peer_tools(), system_prompt=SYSTEM_PROMPT, checkpointer=self.saver)

    def turn(self, session: str | None, message: str) -> str:
        from langchain_core.messages import HumanMessage

        thread = session or new_id()
        options: dict[str, Any] = {"durability": self.durability} if self.durability else {}
        self.agent.invoke({"messages": [HumanMessage(message)]}, {"configurable": {"thread_id": thread}}, **options)
        return thread

    def stored(self, session: str) -> Stored:
        items = [i for i in _moto_items(self.table) if session in str(i.hash_key.value)]
        s3 = sum(size for key, size in _moto_objects(self.bucket).items() if key.startswith(session + "/"))
        return _stored(items, s3)

    def close(self) -> None:
        import boto3

        _drop_tables(self.table)
        s3 = boto3.client("s3", region_name=REGION)
        for key in _moto_objects(self.bucket):
            s3.delete_object(Bucket=self.bucket, Key=key)
        s3.delete_bucket(Bucket=self.bucket)


class MessageHistory:
    """`RunnableWithMessageHistory(agent, lambda sid: DynamoDBChatMessageHistory(...))`, per its docs."""

    name = "RunnableWithMessageHistory + DynamoDBChatMessageHistory"
    table = "bench-message-history"

    def __init__(self, model: ScriptedChatModel) -> None:
        import boto3

        self.model = model
        self.boto3_session = boto3.Session(region_name=REGION)
        _create_table(self.table, "SessionId")

    def _history(self, session_id: str) -> Any:
        from langchain_community.chat_message_histories import DynamoDBChatMessageHistory

        return DynamoDBChatMessageHistory(table_name=self.table, session_id=session_id,
                                          boto3_session=self.boto3_session, ttl=TTL_SECONDS)

    @functools.cached_property
    def chain(self) -> Any:
        """Built once (the session id comes with each call), as a warm process keeps it."""
        from langchain.agents import create_agent
        from langchain_core.messages import HumanMessage
        from langchain_core.runnables import RunnableLambda
        from langchain_core.runnables.history import RunnableWithMessageHistory

        agent = create_agent(self.model, tools=peer_tools(), system_prompt=SYSTEM_PROMPT)

        def respond(inputs: dict[str, Any]) -> list[Any]:
            messages = [*inputs["history"], HumanMessage(inputs["input"])]
            return list(agent.invoke({"messages": messages})["messages"][len(messages):])

        with warnings.catch_warnings():  # "deprecated: use LangGraph's persistence" (the peer above)
            warnings.simplefilter("ignore")
            return RunnableWithMessageHistory(RunnableLambda(respond), self._history,
                                              input_messages_key="input", history_messages_key="history")

    def turn(self, session: str | None, message: str) -> str:
        session_id = session or new_id()
        self.chain.invoke({"input": message}, {"configurable": {"session_id": session_id}})
        return session_id

    def stored(self, session: str) -> Stored:
        return _stored([i for i in _moto_items(self.table) if i.hash_key.value == session])

    def simulate(self, session: str) -> Iterator[Simulated]:
        """The history item after each turn, as `add_messages` writes it (boto3's serialiser), built
        incrementally: sizes are running sums, the item is made only when asked for."""
        from boto3.dynamodb.types import TypeSerializer
        from langchain_core.messages import HumanMessage, messages_to_dict
        from moto.dynamodb.models.dynamo_type import DynamoType

        serializer = TypeSerializer()
        wire: list[dict[str, Any]] = []
        documented, stock = 3, 0  # the list's own overhead (documented rules); moto counts none
        fixed = {"SessionId": {"S": session}, "expireAt": {"N": str(int(time.time()) + TTL_SECONDS)}}
        fixed_documented = item_size(fixed) + len(b"History")
        fixed_stock = moto_item_size(fixed) + len(b"History")
        for turn, messages in enumerate(scripted_turns(self.model), start=1):
            # RunnableWithMessageHistory stores the person's message as it made it from the input: no id.
            for record in messages_to_dict([HumanMessage(messages[0].content), *messages[1:]]):
                value = serializer.serialize(record)
                wire.append(value)
                documented += 1 + value_size(value)
                stock += DynamoType(value).size()
            yield Simulated(turn, fixed_documented + documented, fixed_stock + stock,
                            partial(self._item, fixed, wire, len(wire)))

    @staticmethod
    def _item(fixed: dict[str, Any], wire: list[dict[str, Any]], kept: int) -> dict[str, Any]:
        return {**fixed, "History": {"L": wire[:kept]}}

    def write(self, item: dict[str, Any]) -> None:
        _dynamodb().put_item(TableName=self.table, Item=item)

    def close(self) -> None:
        _drop_tables(self.table)


class PickledMemory:
    """The original OpenBra.in: config and pickled ConversationBufferMemory in the session item."""

    name = "original OpenBra.in (pickled memory)"
    sessions = "bench-original-sessions"
    configs = "bench-original-configs"

    def __init__(self, model: ScriptedChatModel) -> None:
        self.model = model
        self.client = _dynamodb()
        _create_table(self.sessions, "clientId", "sessionId")
        _create_table(self.configs, "clientId", "profileName")
        config = {"profileName": PROFILE, "systemMessage": SYSTEM_PROMPT, "tools": ["calculator"], "temperature": 0}
        self.client.put_item(TableName=self.configs, Item={
            "clientId": {"S": CLIENT_ID}, "profileName": {"S": PROFILE}, "config": {"S": json.dumps(config)},
        })

    def turn(self, session: str | None, message: str) -> str:
        from langchain.agents import create_agent
        from langchain_core.messages import HumanMessage

        if session is None:
            from langchain_classic.memory import ConversationBufferMemory

            session = new_id()
            item = self.client.get_item(TableName=self.configs,
                                        Key={"clientId": {"S": CLIENT_ID}, "profileName": {"S": PROFILE}})["Item"]
            config = json.loads(item["config"]["S"])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                memory = ConversationBufferMemory(return_messages=True)
        else:
            item = self.client.get_item(TableName=self.sessions,
                                        Key={"clientId": {"S": CLIENT_ID}, "sessionId": {"S": session}})["Item"]
            config = json.loads(item["agentConfig"]["S"])
            # The design being measured: unpickling what a table holds (code execution for whoever can
            # write the table), exactly what openbrain/ refuses to do. Bench data only.
            memory = pickle.loads(item["agentMemory"]["B"])  # noqa: S301
        agent = create_agent(self.model, tools=peer_tools(), system_prompt=config["systemMessage"])
        inputs = [*memory.load_memory_variables({})["history"], HumanMessage(message)]
        reply = agent.invoke({"messages": inputs})["messages"][-1]
        memory.save_context({"input": message}, {"output": reply.content})
        self.client.put_item(TableName=self.sessions, Item=self._item(session, config, memory))
        return session

    def stored(self, session: str) -> Stored:
        return _stored([i for i in _moto_items(self.sessions) if i.range_key.value == session])

    def simulate(self, session: str) -> Iterator[Simulated]:
        """The session item after each turn, as `turn` writes it."""
        from langchain_classic.memory import ConversationBufferMemory

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            memory = ConversationBufferMemory(return_messages=True)
        config = {"profileName": PROFILE, "systemMessage": SYSTEM_PROMPT, "tools": ["calculator"], "temperature": 0}
        blob = b""
        for turn, messages in enumerate(scripted_turns(self.model), start=1):
            if blob:  # a real turn starts from the unpickled item (pickle then repeats what it cannot share)
                memory = pickle.loads(blob)  # noqa: S301 - bytes pickled just above, by this process
            # A real turn hands the buffer's messages to the agent, whose message reducer gives each one
            # without an id an id, in place: so every stored message but the latest turn's carries one.
            for message in memory.chat_memory.messages:
                if message.id is None:
                    message.id = str(uuid.uuid4())
            memory.save_context({"input": messages[0].content}, {"output": messages[-1].content})
            item = self._item(session, config, memory)
            blob = item["agentMemory"]["B"]
            yield Simulated(turn, item_size(item), moto_item_size(item), partial(dict, item))

    @staticmethod
    def _item(session: str, config: dict[str, Any], memory: Any) -> dict[str, Any]:
        return {"clientId": {"S": CLIENT_ID}, "sessionId": {"S": session},
                "agentConfig": {"S": json.dumps(config)}, "agentMemory": {"B": pickle.dumps(memory)}}

    def write(self, item: dict[str, Any]) -> None:
        self.client.put_item(TableName=self.sessions, Item=item)

    def close(self) -> None:
        _drop_tables(self.sessions, self.configs)


PEERS = ("langgraph", "langgraph-exit", "history", "pickle")


def build(kind: str, model: ScriptedChatModel) -> Contender:
    """A contender by short name: ours, langgraph, langgraph-exit, history, pickle."""
    if kind == "ours":
        return Ours(model)
    if kind == "langgraph":
        return LangGraphCheckpoints(model)
    if kind == "langgraph-exit":
        return LangGraphCheckpoints(model, durability="exit")
    if kind == "history":
        return MessageHistory(model)
    if kind == "pickle":
        return PickledMemory(model)
    raise KeyError(kind)
