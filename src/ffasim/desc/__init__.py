"""FF-A descriptors: encode, decode and validate every structure of ``reference/ffa-abi.md`` §3.

Decoders take ``bytes``, ``bytearray`` or ``memoryview`` and raise nothing but
:class:`DescriptorError`, whose ``code`` is the FF-A error a real SPMC or mediator returns for
that descriptor (``abi.FFA_RET_INVALID_PARAMETERS`` almost always). Each fixed layout is also
exposed as a ``struct.Struct`` (``TRANSACTION_V1_1`` ...), for code that mirrors C field
accesses one by one.

Module map: ``partinfo`` (partition info, _GET_REGS packing), ``rxtx`` (endpoint RX/TX
descriptor), ``mem`` (transaction, EMAD, composite, constituent, relinquish, retrieve requests),
``msg`` (indirect message header), ``framework`` (framework direct messages), ``meaning``
(human readings of attributes, permissions, flags), ``_dump`` (field-by-field dumps for
``ffasim decode``, exported as :func:`dump` and :func:`guess_type`), ``_records`` (record
equality, :class:`RecordArray`), ``_mem_rules`` (the memory descriptors' rules and general
decode path).
"""

from . import meaning as meaning
from ._dump import Dump as Dump
from ._dump import Field as Field
from ._dump import dump as dump
from ._dump import guess_type as guess_type
from ._errors import DescriptorError as DescriptorError
from ._layouts import COMPOSITE as COMPOSITE
from ._layouts import CONSTITUENT as CONSTITUENT
from ._layouts import EMAD_V1_0 as EMAD_V1_0
from ._layouts import EMAD_V1_2 as EMAD_V1_2
from ._layouts import INDIRECT_MSG_V1_1 as INDIRECT_MSG_V1_1
from ._layouts import INDIRECT_MSG_V1_2 as INDIRECT_MSG_V1_2
from ._layouts import PARTINFO_V1_0 as PARTINFO_V1_0
from ._layouts import PARTINFO_V1_1 as PARTINFO_V1_1
from ._layouts import RELINQUISH_HEADER as RELINQUISH_HEADER
from ._layouts import RXTX_HEADER as RXTX_HEADER
from ._layouts import RXTX_HEADER_V1_1_XEN as RXTX_HEADER_V1_1_XEN
from ._layouts import TRANSACTION_V1_0 as TRANSACTION_V1_0
from ._layouts import TRANSACTION_V1_1 as TRANSACTION_V1_1
from ._records import RecordArray as RecordArray
from .framework import FRAMEWORK_MSG_NAMES as FRAMEWORK_MSG_NAMES
from .framework import framework_msg as framework_msg
from .framework import framework_msg_name as framework_msg_name
from .framework import framework_w2 as framework_w2
from .framework import vm_availability_msg as vm_availability_msg
from .mem import Composite as Composite
from .mem import Constituent as Constituent
from .mem import MemAccess as MemAccess
from .mem import MemTransaction as MemTransaction
from .mem import Relinquish as Relinquish
from .mem import hyp_retrieve_request as hyp_retrieve_request
from .mem import retrieve_request as retrieve_request
from .msg import IndirectMessage as IndirectMessage
from .msg import indirect_msg_header_size as indirect_msg_header_size
from .partinfo import PartitionInfo as PartitionInfo
from .partinfo import decode_partinfo_array as decode_partinfo_array
from .partinfo import encode_partinfo_array as encode_partinfo_array
from .rxtx import RxTxDescriptor as RxTxDescriptor
