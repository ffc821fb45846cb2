"""The async multi-agent core: agents, typed messages, workflow graphs, the executor, budgets and traces."""

from malot.agents.agent import Agent, FunctionAgent, PromptTemplate, RunContext, function_agent
from malot.agents.budget import Budget, BudgetMeter
from malot.agents.executor import AttemptResult, AttemptStatus, Executor, GroupResult
from malot.agents.messages import LeanCandidate, Message, Task, Thought, Usage, VerifierFeedback
from malot.agents.tool_agent import ToolAgent, ToolCallRecord, ToolConversation, ToolRunResult
from malot.agents.tool_source import ToolCallError, ToolResult, ToolSource, ToolSpec
from malot.agents.trace import JsonlTraceWriter, MemoryTrace, Trace, TraceSink, read_trace
from malot.agents.workflow import END, Condition, Edge, RouteView, Workflow

__all__ = [
    "END",
    "Agent",
    "AttemptResult",
    "AttemptStatus",
    "Budget",
    "BudgetMeter",
    "Condition",
    "Edge",
    "Executor",
    "FunctionAgent",
    "GroupResult",
    "JsonlTraceWriter",
    "LeanCandidate",
    "MemoryTrace",
    "Message",
    "PromptTemplate",
    "RouteView",
    "RunContext",
    "Task",
    "Thought",
    "ToolAgent",
    "ToolCallError",
    "ToolCallRecord",
    "ToolConversation",
    "ToolResult",
    "ToolRunResult",
    "ToolSource",
    "ToolSpec",
    "Trace",
    "TraceSink",
    "Usage",
    "VerifierFeedback",
    "Workflow",
    "function_agent",
    "read_trace",
]
